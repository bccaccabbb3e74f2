"""The Pipeline page (AppTest) on a real ledger and lake, and with them missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tasks.core.ledger import BatchRecord, Ledger
from tests.support.monitor_windows import add_window
from tests.ui.conftest import RunPage, ServedUi, element_types, texts
from tests.ui.story import (
    DRIFT_REASON,
    MODEL_NAME,
    PLANS,
    PRODUCTION_VERSION,
    QUARANTINE_REASON,
    SKIP_REASON,
)

pytestmark = pytest.mark.slow  # a real MLflow store and a ledger are set up once


def test_every_batch_with_its_validation_drift_decision_and_reasons(story_env, run_page: RunPage):
    app = run_page("Pipeline", story_env)
    assert not app.exception
    assert not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {
        "Batches": "6", "Rows fetched": f"{sum(p.rows for p in PLANS):,}", "Quarantined": "1",
        "Models trained": "4", "Promoted": "2",
    }  # fmt: skip
    table = app.dataframe[0].value
    assert list(table["batch"]) == ["#1", "#2", "#3", "#4", "#5", "#6"]
    assert list(table["rows"]) == [p.rows for p in PLANS]
    assert list(table["decision"]) == ["train", "skip", "train", "—", "train", "train"]
    assert list(table["validation"])[2:4] == ["curated (warn)", "quarantined (fail)"]
    assert table.loc[1, "why"] == SKIP_REASON and table.loc[2, "why"] == DRIFT_REASON
    assert table.loc[3, "why"] == QUARANTINE_REASON
    assert table.loc[2, "drift share"] == 0.56
    assert element_types(app).count("vega_lite_chart") == 2  # rows and drift share per batch


def test_a_batch_whose_run_did_not_end_is_shown_interrupted(
    story_env, run_page: RunPage, tmp_path: Path
):
    """A copy of the story's ledger where batch 6's run was killed before record."""
    source = Path(story_env["LEDGER_URL"].removeprefix("sqlite:///"))
    copy = tmp_path / "ledger.db"
    shutil.copy(source, copy)
    ledger = Ledger.open(f"sqlite:///{copy}")
    with ledger.session() as session:
        last = session.scalar(select(BatchRecord).order_by(BatchRecord.batch_id.desc()))
        session.delete(last)
    ledger.engine.dispose()
    app = run_page("Pipeline", {**story_env, "LEDGER_URL": f"sqlite:///{copy}"})
    assert not app.exception and not app.error
    (warning,) = [w for w in app.warning if "Interrupted" in w.value]  # beside the live drift's
    assert warning.value.startswith("**Interrupted: batch #6.**")
    assert "finishes it before taking a new batch" in warning.value
    table = app.dataframe[0].value
    assert "interrupted: no record row" in table.loc[5, "outcome"]
    assert not any("interrupted" in outcome for outcome in table["outcome"][:5])
    # the story's own ledger (every run recorded) shows no interruption (only its live drift)
    app = run_page("Pipeline", story_env)
    assert not [w for w in app.warning if "Interrupted" in w.value]


def test_live_drift_no_batch_took_is_a_warning_box(story_env, run_page: RunPage, tmp_path: Path):
    """A copy of the story's ledger where the monitor then saw drift and no batch came."""
    copy = tmp_path / "ledger.db"
    shutil.copy(Path(story_env["LEDGER_URL"].removeprefix("sqlite:///")), copy)
    ledger = Ledger.open(f"sqlite:///{copy}")
    window = add_window(ledger, model_name=MODEL_NAME, version=PRODUCTION_VERSION)
    ledger.engine.dispose()
    app = run_page("Pipeline", {**story_env, "LEDGER_URL": f"sqlite:///{copy}"})
    assert not app.exception and not app.error
    (warning,) = app.warning
    assert warning.value.startswith(
        f"**Live drift, no labelled data yet:** window {window} (drift share 0.60 against v2, "
        "4,812 requests up to 2026-05-04 14:00: state, house_size"
    )
    assert "the API had no new labelled batch" in warning.value
    assert len(app.dataframe) == 1  # the batches are still shown below it


def test_a_quarantined_batch_and_its_validation_report_one_click_away(story_env, run_page: RunPage):
    app = run_page("Pipeline", story_env)
    quarantined = app.selectbox(key="batch").options[3]
    assert "#4" in quarantined
    app.selectbox(key="batch").select_index(3).run()
    page = texts(app)
    assert "quarantined (fail): 0 of 80 rows kept, 80 dropped" in page
    assert f"- {QUARANTINE_REASON}" in page
    assert "iframe" not in element_types(app)  # nothing read from the lake until asked
    app.toggle(key="validation-4").set_value(True).run()
    assert not app.exception and not app.error
    frames = app.get("iframe")
    assert len(frames) == 1
    html = str(frames[0].proto)
    assert "Validation of batch 4" in html and "fail" in html


def test_the_drift_report_of_a_batch(story_env, run_page: RunPage):
    app = run_page("Pipeline", story_env)
    app.selectbox(key="batch").select_index(2).run()
    app.toggle(key="drift-3").set_value(True).run()
    assert "Drift report of batch 3" in str(app.get("iframe")[0].proto)
    assert "decision **train** · 56% of columns drifted" in texts(app)


def test_a_report_missing_from_the_lake_says_so(story_env, run_page: RunPage, tmp_path: Path):
    app = run_page("Pipeline", {**story_env, "STORAGE_URL": f"file://{tmp_path}/empty-lake"})
    app.toggle(key="validation-6").set_value(True).run()
    assert not app.exception
    message = app.error[0].value
    assert "the report reports/validation/batch_id=6/validation.html is not in the lake" in message
    assert "STORAGE_URL" in message


def test_no_ledger_yet_says_how_to_make_one(story_env, run_page: RunPage, tmp_path: Path):
    missing = tmp_path / "nowhere" / "ledger.db"
    app = run_page("Pipeline", {**story_env, "LEDGER_URL": f"sqlite:///{missing}"})
    assert not app.exception
    assert app.error[0].value.startswith(f"**there is no ledger at {missing} yet**")
    assert "`make demo`" in app.error[0].value
    assert not missing.exists()  # the UI never creates a ledger


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_on_the_served_stack_the_trained_batch_tells_its_story(
    served_ui: ServedUi, run_page: RunPage
):
    """PostgreSQL ledger and S3 lake written by the real train and promote steps."""
    app = run_page("Pipeline", served_ui.env)
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    first = table.iloc[0]
    assert first["batch"] == "#1" and first["rows"] == 3000
    assert first["decision"] == "train" and first["promoted"] == "yes"
    assert first["outcome"].startswith("trained v1, promoted")
