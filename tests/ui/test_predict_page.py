"""The Predict page (AppTest) against a real serving with a real model, and serving down.

The page never shows a price for inputs other than those on screen: a change clears it, an
invalid field clears it and is named (next to the field and above the button), and the fields
the model filled in are listed beside the price.
"""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import RunPage, ServedUi, closed_port_url, element_types, texts
from ui.explain_plots import money
from ui.record_form import HouseInputs

CHANGED_HINT = "The inputs changed since the last estimate"


def shown_price(app: AppTest) -> str | None:
    """The price on screen, or None."""
    return {m.label: m.value for m in app.metric}.get("Estimated price")


def in_order(app: AppTest) -> list[tuple[str, str]]:
    """(type, key or text) of the page's inputs, buttons and alerts, in the order shown."""
    shown = []
    for node in app.main:
        kind = getattr(node, "type", None)
        if kind in ("text_input", "number_input", "button"):
            shown.append((kind, str(node.key)))
        elif kind in ("error", "info", "warning"):
            shown.append((kind, str(node.value)))
    return shown


def assert_refused_in_place(app: AppTest, key: str, message: str) -> None:
    """``message`` right below the input ``key``, and again in the list above the button."""
    shown = in_order(app)
    at = shown.index(("number_input" if key != "zip_code" else "text_input", key))
    assert shown[at + 1] == ("error", message), shown
    button = shown.index(("button", "estimate"))
    above = shown[button - 1]
    assert above[0] == "error" and above[1].startswith("**No price until these are corrected:**")
    assert f"- {message}" in above[1], above


def price_from_serving(served_ui: ServedUi, inputs: HouseInputs) -> tuple[float, str]:
    """(price, model version) from serving itself, for the same record."""
    answer = served_ui.serving.post("/predict", json=inputs.record())
    assert answer.status_code == 200, answer.text
    return answer.json()["prices"][0], str(answer.json()["model_version"])


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_the_default_house_gets_its_price_version_and_force_plot(
    served_ui: ServedUi, run_page: RunPage
):
    app = run_page("Predict", served_ui.env)
    assert not app.exception
    assert not app.error
    price = {m.label: m.value for m in app.metric}["Estimated price"]
    expected, version = price_from_serving(served_ui, HouseInputs())
    assert price == money(expected)
    assert f"model {served_ui.stack.model_name} **v{version}**" in texts(app)
    charts = [node for node in app.main if node.type == "plotly_chart"]
    assert len(charts) == 2  # the force plot and the waterfall
    assert "this house:" in str(charts[0].proto)
    assert "Raises it most" in texts(app) or "Lowers it most" in texts(app)
    shap_table = app.dataframe[0].value
    assert len(shap_table) == 9  # one row per feature the model reads


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_changing_the_house_changes_the_price(served_ui: ServedUi, run_page: RunPage):
    app = run_page("Predict", served_ui.env)
    before = {m.label: m.value for m in app.metric}["Estimated price"]
    app.selectbox(key="state").set_value("Ohio")
    app.number_input(key="house_size").set_value(4200)
    app.checkbox(key="sold_before").uncheck()
    app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    after = {m.label: m.value for m in app.metric}["Estimated price"]
    changed = HouseInputs(state="Ohio", house_size=4200.0, prev_sold_date=None)
    assert after == money(price_from_serving(served_ui, changed)[0])
    assert after != before


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_a_changed_input_clears_the_price_until_estimate(served_ui: ServedUi, run_page: RunPage):
    app = run_page("Predict", served_ui.env)
    app.number_input(key="bed").set_value(5)
    app.button(key="estimate").click().run()
    five_beds = shown_price(app)
    assert five_beds == money(price_from_serving(served_ui, HouseInputs(bed=5))[0])
    app.number_input(key="bed").set_value(2).run()  # changed, Estimate not pressed
    assert not app.exception and not app.error
    assert shown_price(app) is None
    assert "plotly_chart" not in element_types(app)
    assert CHANGED_HINT in texts(app)
    app.button(key="estimate").click().run()
    assert shown_price(app) == money(price_from_serving(served_ui, HouseInputs(bed=2))[0])
    assert CHANGED_HINT not in texts(app)


INVALID = [
    ("bath", -1, "Bathrooms -1 is out of range: allowed 1 to 50"),
    (
        "house_size",
        1e9,
        "Living area (sq ft) 1,000,000,000 is out of range: allowed 100 to 100,000",
    ),
    (
        "zip_code",
        "902101",
        "Zip code '902101' is refused: it must be exactly five digits, e.g. 02108 "
        "(or leave it empty)",
    ),
]


def set_field(app: AppTest, key: str, value: Any) -> None:
    if key == "zip_code":
        app.text_input(key=key).input(value)
    else:
        app.number_input(key=key).set_value(value)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.parametrize(("key", "value", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_an_invalid_field_clears_the_price_and_is_named_by_the_field_and_above_the_button(
    served_ui: ServedUi, run_page: RunPage, key: str, value: Any, message: str
):
    app = run_page("Predict", served_ui.env)
    assert shown_price(app) is not None  # a price was on screen before
    set_field(app, key, value)
    app.run()
    assert not app.exception
    assert shown_price(app) is None
    assert "plotly_chart" not in element_types(app)
    assert_refused_in_place(app, key, message)
    app.button(key="estimate").click().run()  # Estimate does not price it either
    assert shown_price(app) is None
    assert_refused_in_place(app, key, message)


def test_a_bad_zip_code_is_refused_before_asking_serving(run_page: RunPage):
    app = run_page("Predict", {"UI_SERVING_URL": closed_port_url()})
    app.text_input(key="zip_code").input("9021")
    app.button(key="estimate").click().run()
    assert not app.exception
    message = (
        "Zip code '9021' is refused: it must be exactly five digits, e.g. 02108 (or leave it empty)"
    )
    assert_refused_in_place(app, "zip_code", message)
    assert app.error[0].value == message
    assert "not answering" not in texts(app)  # serving was never asked


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_fields_left_empty_are_listed_beside_the_price(served_ui: ServedUi, run_page: RunPage):
    app = run_page("Predict", served_ui.env)
    assert "The model filled these in" not in texts(app)  # the defaults fill every field
    app.text_input(key="city").input("")
    app.text_input(key="zip_code").input("")
    app.checkbox(key="sold_before").uncheck()
    app.button(key="estimate").click().run()
    assert not app.exception and not app.error
    empty = HouseInputs(city="", zip_code="", prev_sold_date=None)
    assert shown_price(app) == money(price_from_serving(served_ui, empty)[0])
    assert [i.value for i in app.info] == [
        "The model filled these in: city, zip code, last sold date"
    ]
    app.number_input(key="bed").set_value(None)
    app.button(key="estimate").click().run()
    assert [i.value for i in app.info] == [
        "The model filled these in: city, zip code, bedrooms, last sold date"
    ]


def test_serving_down_says_which_and_what_to_do(run_page: RunPage):
    url = closed_port_url()
    app = run_page("Predict", {"UI_SERVING_URL": url})
    assert not app.exception
    assert len(app.error) == 1
    message = app.error[0].value
    assert f"serving at {url} is not answering" in message
    assert "start it with `make serve`" in message
    assert "plotly_chart" not in element_types(app)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.s3
def test_serving_without_a_model_says_what_to_do(served_ui: ServedUi, run_page: RunPage):
    from tests.support.served_model import serving_process

    with serving_process(
        {**served_ui.stack.env, "MODEL_NAME": "no-such-model"}, wait_ready=False
    ) as empty:
        app = run_page("Predict", {**served_ui.env, "UI_SERVING_URL": empty.url})
    assert not app.exception
    message = app.error[0].value
    assert f"serving at {empty.url} has no model to answer with" in message
    assert "train and promote a model first" in message
