"""The Monitoring page (AppTest) on a real SQLite ledger and file lake seeded with live traffic
(``tests/ui/story.py``: 30 hours of logged requests, monitor windows, shadow predictions), and
its empty states on a ledger without any."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tasks.core.ledger import Ledger
from tests.ui.conftest import RunPage, texts
from tests.ui.story import (
    FEW_ROWS_REASON,
    LIVE_DRIFT_REASON,
    REQUESTS_PER_HOUR,
    SHADOW_EVERY,
    WINDOW_FEATURES,
)

pytestmark = pytest.mark.slow  # a real MLflow store and a ledger are set up once


def charts(app: AppTest) -> list[dict]:
    """Each Vega-Lite chart of the page: its spec, with its data sets as lists of rows."""
    found = []
    for element in app.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        data = {
            d.name: pa.ipc.open_stream(d.data.data).read_pandas().to_dict("records")
            for d in element.proto.datasets
        }
        found.append({"spec": spec, "data": data, "text": element.proto.spec})
    return found


def all_rows(chart: dict) -> list[dict]:
    return [row for rows in chart["data"].values() for row in rows]


def test_live_traffic_drift_and_shadow_with_their_numbers(story_env, run_page: RunPage):
    app = run_page("Monitoring", story_env)
    assert not app.exception and not app.error
    total = sum(REQUESTS_PER_HOUR + (hour % 6) * 3 for hour in range(30))
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Requests shown"] == f"{total:,}"
    assert metrics["Hours with traffic"] == "30"
    found = charts(app)
    titles = [c["text"] for c in found]
    requests = next(c for c in found if "Requests per hour" in c["text"])
    assert sum(row["requests"] for row in all_rows(requests)) == total  # SQL's hourly sums
    assert any("Predicted prices per hour" in t for t in titles)

    # the newest window: drifted, its reasons, not acted on yet, its features against thresholds
    page = texts(app)
    assert "drifted: live drift, no labelled data yet" in page
    assert LIVE_DRIFT_REASON in page
    assert "live drift, no labelled data yet: window " in page  # the banner (the story's words)
    newest = app.dataframe[0].value
    assert set(newest["feature"]) == set(WINDOW_FEATURES)
    assert set(newest.loc[newest["drifted"] == "drifted", "feature"]) == {"state", "house_size"}
    assert (newest["threshold"] == 0.1).all()
    # each feature's drift per window, with the threshold line: the 5 windows that read rows
    per_window = next(c for c in found if "facet" in c["spec"])
    rows = all_rows(per_window)
    assert len(rows) == 5 * len(WINDOW_FEATURES)
    assert {row["threshold"] for row in rows} == {0.1}
    # every window in the table, the one with too few rows too
    windows = app.dataframe[1].value
    assert list(windows["decision"])[:2] == [
        "drifted: live drift, no labelled data yet",
        "too few rows",
    ]
    assert FEW_ROWS_REASON in list(windows["why"])

    # shadow agreement of challenger v4 against production v2
    shadow = app.dataframe[2].value.iloc[0]
    compared = sum(
        len(range(0, REQUESTS_PER_HOUR + (hour % 6) * 3, SHADOW_EVERY)) for hour in range(30)
    )
    assert (shadow["challenger"], shadow["against production"]) == ("v4", "v2")
    assert shadow["predictions compared"] == compared
    assert 0.2 < shadow["share > 10% apart"] < 0.5  # a third were 25% apart, the rest 3%
    assert shadow["median |Δ log10 price|"] == pytest.approx(0.01284, abs=1e-3)  # log10(1.03)
    assert any("more than 10% apart, per hour" in t for t in titles)


def test_the_newest_window_s_report_is_one_click_away(story_env, run_page: RunPage):
    app = run_page("Monitoring", story_env)
    assert not app.get("iframe")
    app.toggle(key="window-report").set_value(True).run()
    assert not app.exception and not app.error
    [frame] = app.get("iframe")
    assert "Live inputs vs training data" in frame.proto.srcdoc
    assert app.get("download_button")  # and the same report to keep


@pytest.fixture(scope="module")
def empty_ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A migrated ledger with no request, window or shadow prediction."""
    root: Path = tmp_path_factory.mktemp("ui-empty")
    url = f"sqlite:///{root / 'ledger.db'}"
    Ledger.open(url)
    return {"LEDGER_URL": url, "STORAGE_URL": f"file://{root / 'lake'}", "UI_CACHE_SECONDS": "0"}


def test_empty_states_say_what_to_do(empty_ledger, run_page: RunPage):
    app = run_page("Monitoring", empty_ledger)
    assert not app.exception and not app.error
    infos = "\n".join(i.value for i in app.info)
    assert "No request logged yet" in infos
    assert "No monitor window yet: the realtor_monitor DAG runs hourly" in infos
    assert "Shadow off: set SERVING_SHADOW=true" in infos
    assert not app.get("vega_lite_chart")


def test_ledger_unreachable_says_so(story_env, run_page: RunPage):
    url = "postgresql+psycopg://postgres@127.0.0.1:9/realtor"
    app = run_page("Monitoring", {**story_env, "LEDGER_URL": url})
    assert not app.exception
    assert "is not answering" in app.error[0].value and "LEDGER_URL" in app.error[0].value
