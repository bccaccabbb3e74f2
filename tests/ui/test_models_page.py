"""The Models page (AppTest) on a real ledger and a real MLflow registry, and with either down."""

from __future__ import annotations

import pytest

from tests.ui.conftest import RunPage, ServedUi, closed_port_url, element_types, texts
from tests.ui.story import (
    COMMON_HOLDOUT_ROWS,
    COMMON_MAE,
    PRODUCTION_VERSION,
    REJECTION_REASON,
    V1_OLD_HOLDOUT_MAE,
)
from tests.ui.test_monitoring_page import all_rows, charts
from ui.explain_plots import money
from ui.ledger_views import COMMON_MAE as COMMON_MAE_COLUMN
from ui.ledger_views import OWN_MAE

pytestmark = pytest.mark.slow  # a real MLflow store and a ledger are set up once


def test_every_version_with_its_metrics_verdict_and_reasons(story_env, run_page: RunPage):
    app = run_page("Models", story_env)
    assert not app.exception
    assert not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["In production"] == f"v{PRODUCTION_VERSION}"
    assert metrics["Its MAE"] == "$151,000"
    assert metrics["Versions trained"] == "4"
    assert metrics["Serving answers with"] == "not answering"  # no serving here, and that is fine
    table = app.dataframe[0].value
    assert list(table["version"]) == ["v4", "v3", "v2", "v1"]
    assert list(table["verdict"]) == [
        "not evaluated yet", "rejected", "in production", "promoted, since replaced"
    ]  # fmt: skip
    assert (
        table.loc[table["version"] == "v3", "why promoted or rejected"]
        .item()
        .startswith(REJECTION_REASON)
    )
    assert "vega_lite_chart" in element_types(app)  # every version on the common holdout


def test_one_fair_leaderboard_never_mixes_holdouts(story_env, run_page: RunPage):
    app = run_page("Models", {**story_env, "UI_MLFLOW_URL": "http://mlflow.example:5000/"})
    assert not app.exception and not app.error
    [chart] = charts(app)
    assert chart["spec"]["title"] == (
        f"MAE on the holdout of batch 6 ({COMMON_HOLDOUT_ROWS:,} rows), every version"
    )
    plotted = {row["version"]: row["dollars"] for row in all_rows(chart)}
    assert plotted == {f"v{v}": mae for v, mae in COMMON_MAE.items()}  # v1: other holdout only
    assert V1_OLD_HOLDOUT_MAE not in plotted.values()
    assert "Not scored on this holdout: v1" in app.warning[0].value
    table = app.dataframe[0].value.set_index("version")
    assert table.loc["v3", COMMON_MAE_COLUMN] == f"${COMMON_MAE['3']:,.0f}"
    assert table.loc["v3", OWN_MAE] == 161_000.0  # what its promotion compared
    assert table.loc["v1", COMMON_MAE_COLUMN] == "not scored"  # never another holdout's
    assert table.loc["v2", "MLflow run"] == "http://mlflow.example:5000/#/runs/run2"
    assert "set UI_MLFLOW_URL" not in texts(app)


def test_without_the_mlflow_url_runs_are_ids_and_the_page_says_where_to_set_it(
    story_env, run_page: RunPage
):
    app = run_page("Models", story_env)
    table = app.dataframe[0].value.set_index("version")
    assert table.loc["v2", "MLflow run"] == "run2"
    assert "set UI_MLFLOW_URL" in texts(app)


def test_the_reasons_of_one_version(story_env, run_page: RunPage):
    app = run_page("Models", story_env)
    app.selectbox(key="version").set_value("3").run()
    page = texts(app)
    assert "**Verdict: rejected**" in page
    assert f"- {REJECTION_REASON}" in page
    assert "compared with champion v2 on the same holdout" in page


def test_registry_down_falls_back_to_the_ledger_and_says_so(story_env, run_page: RunPage):
    down = closed_port_url()
    app = run_page("Models", {**story_env, "MLFLOW_TRACKING_URI": down})
    assert not app.exception
    warning = app.warning[0].value
    assert f"the MLflow registry at {down} is not answering" in warning
    assert "start the MLflow server" in warning
    assert "ledger's last promoted version (v2)" in warning
    assert {m.label: m.value for m in app.metric}["In production"] == "v2"


def test_ledger_unreachable_says_so_without_a_trace(story_env, run_page: RunPage):
    url = "postgresql+psycopg://postgres@127.0.0.1:9/realtor"  # discard port: nothing listens
    app = run_page("Models", {**story_env, "LEDGER_URL": url})
    assert not app.exception
    assert len(app.error) == 1
    message = app.error[0].value
    assert (
        "the ledger at postgresql+psycopg://postgres@127.0.0.1:9/realtor is not answering"
        in message
    )
    assert "LEDGER_URL" in message
    assert "Traceback" not in texts(app)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_on_the_served_stack_registry_ledger_and_serving_agree(
    served_ui: ServedUi, run_page: RunPage
):
    """PostgreSQL ledger, MLflow server, and the model the real train and promote made."""
    from tasks.core.registry import champion

    production = champion(served_ui.stack.client(), served_ui.stack.model_name)
    assert production is not None
    app = run_page("Models", served_ui.env)
    assert not app.exception and not app.error and not app.warning
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["In production"] == f"v{production.version}"
    assert metrics["Serving answers with"] == f"v{production.version}"
    table = app.dataframe[0].value
    row = table[table["version"] == f"v{production.version}"]
    assert row["verdict"].item() == "in production"
    assert row[OWN_MAE].item() > 0 and row["baseline MAE (own holdout)"].item() > 0
    # promote scored it on the newest holdout, its own: the same number twice
    assert row[COMMON_MAE_COLUMN].item() == money(row[OWN_MAE].item())
    assert row["why promoted or rejected"].item().startswith("no champion: first model")
