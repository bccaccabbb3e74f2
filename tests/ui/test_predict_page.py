"""The Predict page (AppTest) against a real serving with a real model, and serving down."""

from __future__ import annotations

import pytest

from tests.ui.conftest import RunPage, ServedUi, closed_port_url, element_types, texts
from ui.explain_plots import money
from ui.record_form import HouseInputs


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
    app.button[0].click().run()
    assert not app.exception and not app.error
    after = {m.label: m.value for m in app.metric}["Estimated price"]
    changed = HouseInputs(state="Ohio", house_size=4200.0, prev_sold_date=None)
    assert after == money(price_from_serving(served_ui, changed)[0])
    assert after != before


def test_a_bad_zip_code_is_refused_before_asking_serving(run_page: RunPage):
    app = run_page("Predict", {"UI_SERVING_URL": closed_port_url()})
    app.text_input(key="zip_code").input("9021")
    app.button[0].click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "**zip_code**: five digits, e.g. 02108 (or leave it empty)"
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
