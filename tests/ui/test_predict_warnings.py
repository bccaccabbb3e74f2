"""Serving's out-of-distribution warnings beside the price, and what the UI sends serving.

Both against the session's real serving: its warnings come from the served version's own
training ranges (``feature_ranges.json``, shown by ``/model``), and it refuses what it does not
accept (415 for a body that is not JSON, 422 for a status outside the data's vocabulary, a
boolean for a number, a record with no feature), which the page would show as an error.
"""

from __future__ import annotations

import math

import pytest

from tests.support.served_model import ServingProcess
from tests.ui.conftest import RunPage, ServedUi
from ui.explain_plots import money
from ui.record_form import HOUSE_SIZE, STATES, HouseInputs, warning_sentence
from ui.serving_client import OodWarning

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]
NUMBERS = ("bed", "bath", "house_size", "acre_lot")


def unusual_house(serving: ServingProcess) -> HouseInputs:
    """A house past the served version's data: larger than any it was trained on (still within
    the form's range) in a state it never saw."""
    ranges = serving.get("/model").json()["input_checks"]["training_ranges"]
    size = float(math.ceil(ranges["numeric"]["house_size"][1] * 1.5 / 100) * 100)
    assert size <= HOUSE_SIZE[1], f"the served sizes leave no room under the form's {HOUSE_SIZE}"
    unseen = [state for state in STATES if state not in ranges["categories"]["state"]]
    assert unseen, "the served version saw every state the form offers"
    return HouseInputs(state=unseen[0], house_size=size)


def serving_s_warnings(serving: ServingProcess, house: HouseInputs) -> list[str]:
    """What the page should say for ``house``: serving's own warnings, in the page's words."""
    answer = serving.post("/explain", json=house.record())
    assert answer.status_code == 200, answer.text
    return [warning_sentence(OodWarning.from_json(w)) for w in answer.json()["warnings"]]


def test_serving_s_warnings_are_shown_beside_the_price(served_ui: ServedUi, run_page: RunPage):
    house = unusual_house(served_ui.serving)
    expected = serving_s_warnings(served_ui.serving, house)
    assert [w.split(" ", 1)[0] for w in expected] == ["State", "Size"], expected

    app = run_page("Predict", served_ui.env)
    assert not app.warning  # the default house (Los Angeles, 1,760 sq ft): nothing to warn of
    app.selectbox(key="state").set_value(house.state)
    app.number_input(key="house_size").set_value(house.house_size)
    app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    answer = served_ui.serving.post("/predict", json=house.record()).json()
    assert {m.label: m.value for m in app.metric}["Estimated price"] == money(answer["prices"][0])
    assert [w.value for w in app.warning] == expected
    # beside the price: before the explanation's plots
    kinds = [node.type for node in app.main if getattr(node, "type", None)]
    assert kinds.index("metric") < kinds.index("warning") < kinds.index("plotly_chart")


def test_the_ui_sends_only_what_serving_accepts(served_ui: ServedUi, run_page: RunPage):
    """Even with every optional field empty and an unusual status, serving (which refuses a
    body that is not JSON, a status outside the vocabulary, booleans for numbers and a record
    without features) prices the page's record, and the page shows that price."""
    app = run_page("Predict", served_ui.env)
    app.selectbox(key="status").set_value("ready_to_build")
    app.text_input(key="city").input("")
    app.text_input(key="zip_code").input("")
    for key in NUMBERS:
        app.number_input(key=key).set_value(None)
    app.checkbox(key="sold_before").uncheck()
    app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    record = HouseInputs(
        status="ready_to_build",
        city="",
        zip_code="",
        bed=None,
        bath=None,
        house_size=None,
        acre_lot=None,
        prev_sold_date=None,
    ).record()
    assert not any(isinstance(record[key], bool) for key in NUMBERS)
    answer = served_ui.serving.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    assert {m.label: m.value for m in app.metric}["Estimated price"] == money(
        answer.json()["prices"][0]
    )
    assert [i.value for i in app.info] == [
        "The model filled these in: city, zip code, bedrooms, bathrooms, living area, "
        "lot size, last sold date"
    ]
