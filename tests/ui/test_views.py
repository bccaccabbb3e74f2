"""The UI's pure parts: explanation pictures, ledger tables and charts, the form's record."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import pandas as pd
import pytest

from tasks.core.wire import STATUSES
from tests.ui.story import COMMON_MAE, PLANS, PRODUCTION_VERSION
from ui import ledger_views as views
from ui.explain_plots import (
    contributions_of,
    dollar_ticks,
    force_figure,
    force_segments,
    money,
    percent_effect,
    short_money,
    summary_sentence,
    waterfall_figure,
    waterfall_steps,
)
from ui.record_form import STATES, HouseInputs, feature_label, price_is_current, warning_sentence
from ui.serving_client import Explanation, OodWarning, field_errors
from ui.settings import UiSettings

CONTRIBUTIONS = {
    "house_size": 0.31, "state": 0.52, "bed": -0.05, "bath": 0.02, "city": -0.21,
    "zip_code": 0.01, "status": -0.03, "acre_lot": 0.04, "prev_sold_date": -0.01,
}  # fmt: skip
FEATURES = {
    "house_size": 2400.0, "state": "California", "bed": 3.0, "bath": 2.0, "city": "Fresno",
    "zip_code": "93650", "status": "for_sale", "acre_lot": 0.26, "prev_sold_date": None,
}  # fmt: skip
BASE = 12.65


def test_force_arrows_meet_at_the_prediction_and_span_the_contributions():
    rows = contributions_of(CONTRIBUTIONS, FEATURES)
    segments = force_segments(BASE, rows)
    prediction = BASE + sum(CONTRIBUTIONS.values())
    red = [s for s in segments if s.row.raises]
    blue = [s for s in segments if not s.row.raises]
    assert max(s.end for s in red) == pytest.approx(prediction)
    assert min(s.start for s in blue) == pytest.approx(prediction)
    # the largest arrow of each colour touches the prediction
    assert red[0].row.feature == "state" and blue[0].row.feature == "city"
    for segment in segments:
        assert segment.end - segment.start == pytest.approx(abs(segment.row.contribution))
    # red starts at base - |blue|, blue ends at base + red
    assert min(s.start for s in red) == pytest.approx(
        BASE - sum(-c for c in CONTRIBUTIONS.values() if c < 0)
    )
    assert max(s.end for s in blue) == pytest.approx(
        BASE + sum(c for c in CONTRIBUTIONS.values() if c > 0)
    )


def test_waterfall_walks_from_the_average_to_the_prediction():
    rows = contributions_of(CONTRIBUTIONS, FEATURES)
    steps = waterfall_steps(BASE, rows, max_features=5)
    assert steps[0].start == pytest.approx(BASE)
    assert steps[-1].end == pytest.approx(BASE + sum(CONTRIBUTIONS.values()))
    assert steps[0].label == "4 other features"  # 9 features, 5 shown
    assert steps[-1].label == "State = California"  # the largest last, on top
    for before, after in itertools.pairwise(steps):
        assert after.start == pytest.approx(before.end)
    every = waterfall_steps(BASE, rows, max_features=8)  # 9 features: no "1 other feature"
    assert len(every) == 9 and "other" not in every[0].label


def test_figures_are_labelled_in_dollars_and_percentages():
    force = force_figure(BASE, CONTRIBUTIONS, FEATURES)
    texts = " ".join(a.text for a in force.layout.annotations)
    price = money(math.expm1(BASE + sum(CONTRIBUTIONS.values())))
    assert f"this house: {price}" in texts
    assert "State = California<br><b>+68%</b>" in texts
    assert all(t.startswith("$") for t in force.layout.xaxis.ticktext)
    waterfall = waterfall_figure(BASE, CONTRIBUTIONS, FEATURES)
    assert list(waterfall.data[0].text)[-1] == "+68%"
    assert "Last sold = unknown" in list(waterfall.data[0].y)


def test_dollar_ticks_are_round_amounts_inside_the_range():
    for low, high in ((200e3, 600e3), (50e3, 5e6), (400e3, 420e3), (2e3, 3e7)):
        values, labels = dollar_ticks(math.log1p(low), math.log1p(high))
        assert len(values) >= 2, (low, high, labels)
        assert all(math.log1p(low) - 1e-9 <= v <= math.log1p(high) + 1e-9 for v in values)
        assert len(values) <= 8
    assert dollar_ticks(math.log1p(50e3), math.log1p(5e6))[1][:3] == ["$100k", "$200k", "$500k"]
    assert short_money(1_250_000) == "$1.25M" and short_money(950) == "$950"
    assert percent_effect(math.log(1.25)) == "+25%" and percent_effect(math.log(0.6)) == "\u221240%"


def test_summary_sentence_names_the_strongest_pushes():
    sentence = summary_sentence(contributions_of(CONTRIBUTIONS, FEATURES))
    assert "Raises it most: **State = California** (+68%)" in sentence
    assert "Lowers it most: **City = Fresno** (\u221219%)" in sentence


def test_the_form_makes_serving_s_record():
    record = HouseInputs(city="  ", zip_code="", bed=4, prev_sold_date=dt.date(2020, 5, 1)).record()
    assert record == {
        "status": "for_sale", "bed": 4.0, "bath": 2.0, "acre_lot": 0.26, "city": None,
        "state": "California", "zip_code": None, "house_size": 1760.0,
        "prev_sold_date": "2020-05-01",
    }  # fmt: skip
    assert HouseInputs().problems() == {}
    assert "Puerto Rico" in STATES and "District of Columbia" in STATES
    assert feature_label("house_size", 2400.0) == "Size = 2,400 sq ft"
    assert feature_label("status", "ready_to_build") == "Status = Ready to build"


@pytest.mark.parametrize(
    ("inputs", "field", "message"),
    [
        (HouseInputs(bath=-1), "bath", "Bathrooms -1 is out of range: allowed 1 to 50"),
        (HouseInputs(bed=0), "bed", "Bedrooms 0 is out of range: allowed 1 to 50"),
        (
            HouseInputs(house_size=1e9),
            "house_size",
            "Living area (sq ft) 1,000,000,000 is out of range: allowed 100 to 100,000",
        ),
        (
            HouseInputs(acre_lot=-0.5),
            "acre_lot",
            "Lot (acres) -0.5 is out of range: allowed 0 to 10,000",
        ),
        (
            HouseInputs(zip_code="902101"),
            "zip_code",
            "Zip code '902101' is refused: it must be exactly five digits, e.g. 02108 "
            "(or leave it empty)",
        ),
        (
            HouseInputs(zip_code="9021"),
            "zip_code",
            "Zip code '9021' is refused: it must be exactly five digits, e.g. 02108 "
            "(or leave it empty)",
        ),
        (
            HouseInputs(status="foo"),
            "status",
            "Status must be one of for_sale, sold, ready_to_build",
        ),
    ],
)
def test_each_invalid_field_is_named_with_its_allowed_range(inputs, field, message):
    assert inputs.problems() == {field: message}


def test_the_edges_of_each_range_are_allowed_and_empty_numbers_are_no_problem():
    assert HouseInputs(bed=1, bath=50, house_size=100.0, acre_lot=0.0).problems() == {}
    assert HouseInputs(bed=50, bath=1, house_size=100_000.0, acre_lot=10_000.0).problems() == {}
    assert HouseInputs(bed=None, bath=None, house_size=None, acre_lot=None).problems() == {}


def test_empty_fields_are_named_as_a_person_reads_them():
    assert HouseInputs().empty_fields() == []
    empty = HouseInputs(city=" ", zip_code="", prev_sold_date=None)
    assert empty.empty_fields() == ["city", "zip code", "last sold date"]
    assert HouseInputs(bed=None, acre_lot=None).empty_fields() == ["bedrooms", "lot size"]


def test_the_record_holds_nothing_serving_refuses():
    """Serving refuses a status outside the data's vocabulary, booleans for numbers, and a
    record without any feature: the form's record has none of these, even left empty."""
    for inputs in (HouseInputs(), HouseInputs(city="", zip_code="", bed=None, bath=None,
                                              house_size=None, acre_lot=None, prev_sold_date=None)):  # fmt: skip
        record = inputs.record()
        assert record["status"] in STATUSES and record["state"] in STATES
        assert not any(isinstance(value, bool) for value in record.values())
        assert all(
            isinstance(record[k], float | None) for k in ("bed", "bath", "house_size", "acre_lot")
        )


def test_a_price_is_current_only_for_the_record_it_was_computed_for():
    record = HouseInputs(bed=5).record()
    assert price_is_current(record, HouseInputs(bed=5).record())
    assert not price_is_current(record, HouseInputs(bed=2).record())
    assert not price_is_current(None, record)


def test_serving_s_warnings_become_sentences_with_the_form_s_labels():
    above = OodWarning("house_size", "above_range", 1e8, (120.0, 52_000.0), "serving's words")
    assert warning_sentence(above) == (
        "Size 100,000,000 sq ft is above the largest the model was trained on (52,000 sq ft): "
        "this price is a guess beyond its data."
    )
    below = OodWarning("bath", "below_range", 1.0, (2.0, 12.0), "serving's words")
    assert warning_sentence(below).startswith(
        "Baths 1 is below the smallest the model was trained on (2)"
    )
    unseen = OodWarning("city", "unseen_category", "Nowhereville", None, "serving's words")
    assert warning_sentence(unseen) == (
        "City Nowhereville was not in the model's training data: the model priced it as an "
        "unknown city."
    )
    other = OodWarning("zip_code", "some_new_kind", "99999", None, "zip_code 99999 is odd")
    assert warning_sentence(other) == "Zip code: zip_code 99999 is odd"


def test_fastapi_422_details_become_one_rule_per_field():
    detail = [
        {"type": "greater_than", "loc": ["body", "house_size"], "msg": "Input should be > 0"},
        {"type": "string_pattern_mismatch", "loc": ["body", 0, "zip_code"], "msg": "bad zip"},
    ]
    assert field_errors(detail) == {"house_size": "Input should be > 0", "zip_code": "bad zip"}
    assert field_errors("no list") == {"record": "no list"}


def test_explanation_reads_serving_s_contract():
    body = {
        "request_id": "r", "model_name": "m", "model_version": 3, "price": 100.0,
        "log_price": math.log1p(100.0), "space": "log1p(price)", "base_value": 4.0,
        "contributions": {"bed": 0.6151}, "features": {"bed": 2},
    }  # fmt: skip
    explanation = Explanation.from_json(body)
    assert explanation.model_version == "3" and explanation.contributions == {"bed": 0.6151}
    assert explanation.warnings == ()  # today's serving: no "warnings" key, no warnings
    warned = Explanation.from_json(
        {
            **body,
            "warnings": [
                {"row": 0, "feature": "house_size", "kind": "above_range", "value": 1e8,
                 "range": [120, 52000], "message": "house_size 100,000,000 is above ..."},
                {"row": 0, "feature": "city", "kind": "unseen_category", "value": "Nowhere",
                 "range": None, "message": "city Nowhere was never seen"},
            ],
        }
    )  # fmt: skip
    assert warned.warnings == (
        OodWarning("house_size", "above_range", 1e8, (120.0, 52000.0), "house_size 100,000,000 is above ..."),
        OodWarning("city", "unseen_category", "Nowhere", None, "city Nowhere was never seen"),
    )  # fmt: skip


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("UI_SERVING_URL", "http://serving:8000")
    monkeypatch.setenv("LEDGER_URL", "postgresql+psycopg://u@db/realtor")
    settings = UiSettings()
    assert settings.ui_serving_url == "http://serving:8000"
    assert settings.ledger_url == "postgresql+psycopg://u@db/realtor"
    assert settings.model_name == "realtor-price"


# --- ledger views, on history and summaries shaped as tasks.core.story returns them ----------------


def history() -> list[dict]:
    entries = []
    for plan in PLANS:
        if plan.version is None:
            continue
        entries.append(
            {
                "model_version": plan.version, "batch_number": plan.number,
                "run_id": f"run{plan.version}",
                "trained_at": dt.datetime(2026, 11, 20, plan.number, tzinfo=dt.UTC),
                "training_batch_ids": [1], "training_reasons": list(plan.reasons),
                "metrics": {"mae": plan.mae, "baseline_mae": 236_000.0, "rmse": 1.0},
                "promoted": plan.promoted, "promotion_reasons": list(plan.promotion_reasons),
                "evaluated_at": None if plan.promoted is None
                else dt.datetime(2026, 11, 20, plan.number, 5, tzinfo=dt.UTC),
            }
        )  # fmt: skip
    return entries


def test_models_frame_gives_each_version_its_verdict_newest_first():
    frame = views.models_frame(history(), PRODUCTION_VERSION)
    assert list(frame["version"]) == ["v4", "v3", "v2", "v1"]
    assert list(frame["verdict"]) == [
        views.NOT_EVALUATED,
        views.REJECTED,
        views.IN_PRODUCTION,
        views.PROMOTED,
    ]
    assert (
        frame.loc[frame["version"] == "v3", "why promoted or rejected"]
        .item()
        .startswith("MAE 6.7% worse")
    )


BOARD = {
    "holdout": {"batch_id": 6, "batch_number": 6, "model_version": "4", "rows": 72_114},
    "scores": {v: {"mae": mae, "run_id": f"run{v}"} for v, mae in COMMON_MAE.items()},
}


def test_the_leaderboard_plots_only_the_common_holdout():
    data = views.leaderboard_data(history(), PRODUCTION_VERSION, BOARD)
    assert list(data["version"]) == ["v2", "v3", "v4"]  # v1 has no score on this holdout
    assert list(data["dollars"]) == [COMMON_MAE["2"], COMMON_MAE["3"], COMMON_MAE["4"]]
    assert views.not_scored(history(), BOARD) == ["v1"]
    assert (
        views.holdout_title(BOARD) == "MAE on the holdout of batch 6 (72,114 rows), every version"
    )
    spec = views.leaderboard_chart(history(), PRODUCTION_VERSION, BOARD).to_dict()
    assert spec["title"] == views.holdout_title(BOARD)
    assert "baseline" not in json.dumps(spec)  # the baseline was measured on each own holdout
    empty = views.leaderboard_data(history(), PRODUCTION_VERSION, {"holdout": None, "scores": {}})
    assert empty.empty


def test_the_table_labels_both_maes_and_links_each_run():
    frame = views.models_frame(
        history(), PRODUCTION_VERSION, BOARD, lambda run: f"http://mlflow/#/runs/{run}"
    )
    row = frame.set_index("version")
    assert row.loc["v3", views.COMMON_MAE] == COMMON_MAE["3"]
    assert row.loc["v3", views.OWN_MAE] == 161_000.0
    assert pd.isna(row.loc["v1", views.COMMON_MAE])  # never a number from another holdout
    assert row.loc["v2", views.OWN_MAE] == 151_000.0
    assert row.loc["v2", "MLflow run"] == "http://mlflow/#/runs/run2"
    without_links = views.models_frame(history(), PRODUCTION_VERSION, BOARD)
    assert list(without_links["MLflow run"]) == ["run4", "run3", "run2", "run1"]


def test_last_promoted_version_is_the_ledger_s_production():
    assert views.last_promoted_version(history()) == "2"
    assert views.last_promoted_version([]) is None


def summaries() -> list[dict]:
    out = []
    for i, plan in enumerate(PLANS, start=1):
        quarantined = plan.validation == "fail"
        out.append(
            {
                "batch_id": i, "group_number": 1, "day": "Tuesday", "batch_number": plan.number,
                "rows": plan.rows, "validation_status": "quarantined" if quarantined else "curated",
                "validation_outcome": plan.validation, "rows_dropped": plan.dropped,
                "validation_reasons": ["bad"] if quarantined else [],
                "decision": plan.decision, "decision_reasons": list(plan.reasons),
                "drift_share": plan.drift_share, "model_version": plan.version,
                "mae": plan.mae, "promoted": plan.promoted, "outcome": None,
            }
        )  # fmt: skip
    return out


def test_pipeline_views_classify_every_batch():
    rows = summaries()
    assert [views.batch_category(s) for s in rows] == [
        views.TRAINED_PROMOTED, views.SKIPPED, views.TRAINED_PROMOTED, views.QUARANTINED,
        views.TRAINED_REJECTED, views.IN_PROGRESS,
    ]  # fmt: skip
    frame = views.pipeline_frame(rows)
    assert list(frame["batch"]) == ["#1", "#2", "#3", "#4", "#5", "#6"]
    assert frame.loc[3, "why"] == "bad" and frame.loc[3, "validation"] == "quarantined (fail)"
    assert views.pipeline_totals(rows) == {
        "batches": 6, "rows": sum(p.rows for p in PLANS), "quarantined": 1, "trained": 4,
        "promoted": 2,
    }  # fmt: skip
    other_day = [*rows, {**rows[0], "batch_id": 7, "day": "Wednesday"}]
    assert views.pipeline_frame(other_day)["batch"].iloc[-1] == "g1 Wednesday #1"
    assert views.rows_chart(rows).to_dict()["mark"]["type"] == "bar"
    assert "drift" in views.drift_chart(rows).to_dict()["title"].lower()


def test_a_held_promotion_is_neither_rejected_nor_promoted():
    held = {"model_version": "4", "promoted": False, "promotion_held": True}
    assert views.verdict(held, production="3") == views.HELD
    assert views.verdict({**held, "promotion_held": False}, production="3") == views.REJECTED
    rejected = summaries()[4]  # batch 5: trained, rejected
    frame = views.pipeline_frame([rejected, {**rejected, "promotion_held": True}])
    assert list(frame["promoted"]) == ["no", "held"]
