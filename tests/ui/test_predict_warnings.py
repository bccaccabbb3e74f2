"""Serving's out-of-distribution warnings beside the price, and what the UI sends serving.

The answers are the real serving's, with the ``warnings`` of issue 17's contract added by a
real proxy (``tests/ui/warning_proxy.py``) until serving sends them itself.
"""

from __future__ import annotations

import pytest

from tasks.schema import STATUSES
from tests.ui.conftest import RunPage, ServedUi
from tests.ui.warning_proxy import warning_proxy
from ui.explain_plots import money
from ui.record_form import HouseInputs

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]
NUMBERS = ("bed", "bath", "house_size", "acre_lot")


def test_serving_s_warnings_are_shown_beside_the_price(served_ui: ServedUi, run_page: RunPage):
    with warning_proxy(served_ui.serving.url) as proxy:
        app = run_page("Predict", {**served_ui.env, "UI_SERVING_URL": proxy.url})
        assert not app.warning  # Los Angeles, 1,760 sq ft: nothing to warn of
        app.text_input(key="city").input("Nowhereville")
        app.number_input(key="house_size").set_value(60_000)
        app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    inputs = HouseInputs(city="Nowhereville", house_size=60_000.0)
    answer = served_ui.serving.post("/predict", json=inputs.record())
    price = {m.label: m.value for m in app.metric}["Estimated price"]
    assert price == money(answer.json()["prices"][0])
    assert [w.value for w in app.warning] == [
        "Size 60,000 sq ft is above the largest the model was trained on (52,000 sq ft): "
        "this price is a guess beyond its data.",
        "City Nowhereville was not in the model's training data: the model priced it as an "
        "unknown city.",
    ]
    # beside the price: before the explanation's plots
    kinds = [node.type for node in app.main if getattr(node, "type", None)]
    assert kinds.index("metric") < kinds.index("warning") < kinds.index("plotly_chart")


def test_the_ui_sends_only_what_serving_accepts(served_ui: ServedUi, run_page: RunPage):
    """JSON with its content type, a status from the data's vocabulary, numbers never
    booleans, and never a record without features: even with every optional field empty."""
    with warning_proxy(served_ui.serving.url) as proxy:
        app = run_page("Predict", {**served_ui.env, "UI_SERVING_URL": proxy.url})
        app.selectbox(key="status").set_value("ready_to_build")
        app.text_input(key="city").input("")
        app.text_input(key="zip_code").input("")
        for key in NUMBERS:
            app.number_input(key=key).set_value(None)
        app.checkbox(key="sold_before").uncheck()
        app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    posted = [sent for sent in proxy.sent if sent.method == "POST"]
    assert [sent.path for sent in posted] == ["/explain", "/explain"]
    for sent in posted:
        assert sent.content_type == "application/json"
        record = sent.body
        assert record["status"] in STATUSES
        assert any(value is not None for value in record.values())
        assert not any(isinstance(record[key], bool) for key in NUMBERS)
    assert (
        posted[-1].body
        == HouseInputs(
            status="ready_to_build",
            city="",
            zip_code="",
            bed=None,
            bath=None,
            house_size=None,
            acre_lot=None,
            prev_sold_date=None,
        ).record()
    )
    assert [i.value for i in app.info] == [
        "The model filled these in: city, zip code, bedrooms, bathrooms, living area, "
        "lot size, last sold date"
    ]
