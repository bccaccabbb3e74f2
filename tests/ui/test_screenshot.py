"""The Predict page in a real browser: ``streamlit run ui/app.py`` with serving behind it,
headless Chromium, screenshots saved in ``var/test-artifacts/``: ``ui-predict.png`` (a price
and its plots), ``ui-predict-invalid.png`` (Bathrooms -1), ``ui-predict-warning.png`` (a
house larger than any the served version saw, with serving's warning beside the price); and the
Monitoring and Models pages on the seeded story (``ui-monitoring.png``, ``ui-models.png``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from tests.support.browser import ARTIFACTS, browser_page, require_chromium
from tests.ui.conftest import ServedUi
from tests.ui.streamlit_process import streamlit_app
from tests.ui.test_predict_warnings import unusual_house
from ui.explain_plots import money
from ui.record_form import HouseInputs, warning_sentence
from ui.serving_client import OodWarning

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]
SCREENSHOT = ARTIFACTS / "ui-predict.png"
SHAP_RED = (255, 0, 81)


def shap_red_pixels(image: Image.Image) -> int:
    """Pixels of the force plot's red (features that raise the price)."""
    rgb = image.convert("RGB")
    return sum(
        count
        for count, (r, g, b) in rgb.getcolors(maxcolors=rgb.width * rgb.height) or []
        if abs(r - SHAP_RED[0]) < 12 and abs(g - SHAP_RED[1]) < 12 and abs(b - SHAP_RED[2]) < 12
    )


def test_predict_page_screenshot_shows_the_price_and_its_shap_plots(served_ui: ServedUi):
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    log = served_ui.stack.workdir / "streamlit.log"
    with streamlit_app(served_ui.env, log) as url, browser_page(1440, 1250) as page:
        # first a page by its own URL, on the fresh server: it must still run through the app
        # (its navigation and wide layout), not as a bare script of a pages/ folder
        page.goto(f"{url}/pipeline", wait_until="domcontentloaded")
        page.get_by_text("Pipeline decisions").wait_for(timeout=60_000)
        pipeline_width = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Estimated price").wait_for(timeout=60_000)
        charts = page.locator("[data-testid='stPlotlyChart'] .main-svg")
        charts.first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # plotly's second layout pass and the fonts
        metric = page.locator("[data-testid='stMetricValue']").first.inner_text()
        force_text = page.locator("[data-testid='stPlotlyChart']").first.inner_text()
        errors = page.locator("[data-testid='stAlertContentError']").count()
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert errors == 0, log.read_text()[-3000:]
    assert pipeline_width is not None and pipeline_width["width"] > 1000, pipeline_width
    assert metric.startswith("$") and len(metric) >= 6, metric
    assert "this house:" in force_text and "typical price" in force_text
    assert SCREENSHOT.stat().st_size > 60_000
    with Image.open(SCREENSHOT) as image:
        assert image.width == 1440
        assert shap_red_pixels(image) > 5_000  # the force plot and the waterfall are drawn


INVALID_SCREENSHOT = ARTIFACTS / "ui-predict-invalid.png"
WARNING_SCREENSHOT = ARTIFACTS / "ui-predict-warning.png"
BATH_REFUSED = "Bathrooms -1 is out of range: allowed 1 to 50"


def type_into(page: Page, label: str, text: str) -> None:
    """Type into the input labelled ``label`` and commit it (Enter), as a person does."""
    field = page.get_by_label(label, exact=True)
    field.fill(text)
    field.press("Enter")


def shoot_invalid_field(url: str, path: Path) -> dict[str, object]:
    """The page with Bathrooms -1 typed after a price was shown; what the person sees."""
    with browser_page(1440, 1400) as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Estimated price").wait_for(timeout=60_000)
        type_into(page, "Bathrooms", "-1")
        page.get_by_text("No price until these are corrected").wait_for(timeout=30_000)
        page.wait_for_timeout(800)  # the rerun's last elements
        seen = {
            "errors": page.locator(
                "[data-testid='stAlertContentError'] [data-testid='stMarkdownContainer']"
            ).all_inner_texts(),
            "prices": page.locator("[data-testid='stMetricValue']").count(),
            "bath": page.get_by_label("Bathrooms", exact=True).input_value(),
        }
        page.screenshot(path=str(path), full_page=True)
    return seen


def shoot_unusual_house(url: str, path: Path, house: HouseInputs) -> dict[str, object]:
    """The page priced for ``house`` (its city and size typed in); the warnings beside the
    price."""
    with browser_page(1440, 1250) as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Estimated price").wait_for(timeout=60_000)
        type_into(page, "City", house.city)
        type_into(page, "Living area (sq ft)", f"{house.house_size:.0f}")
        page.get_by_text("The inputs changed since the last estimate").wait_for(timeout=30_000)
        page.get_by_role("button", name="Estimate the price").click()
        page.get_by_text("Estimated price").wait_for(timeout=60_000)
        page.locator("[data-testid='stPlotlyChart'] .main-svg").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # plotly's second layout pass and the fonts
        seen = {
            "warnings": page.locator(
                "[data-testid='stAlertContentWarning'] [data-testid='stMarkdownContainer']"
            ).all_inner_texts(),
            "price": page.locator("[data-testid='stMetricValue']").first.inner_text(),
        }
        page.screenshot(path=str(path), full_page=True)
    return seen


def test_predict_page_screenshot_with_an_invalid_field(served_ui: ServedUi):
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    INVALID_SCREENSHOT.unlink(missing_ok=True)
    log = served_ui.stack.workdir / "streamlit-invalid.log"
    with streamlit_app(served_ui.env, log) as url:
        seen = shoot_invalid_field(url, INVALID_SCREENSHOT)
    assert seen["prices"] == 0, seen  # the price shown before is gone
    assert seen["bath"] == "-1", seen  # kept as typed, not clamped back
    errors = seen["errors"]
    assert isinstance(errors, list) and errors[0] == BATH_REFUSED, seen  # below the field
    assert "No price until these are corrected" in errors[1] and BATH_REFUSED in errors[1]
    assert INVALID_SCREENSHOT.stat().st_size > 30_000


def test_predict_page_screenshot_with_serving_s_warnings(served_ui: ServedUi):
    """Serving's own warnings for an unusual house are shown beside its price (a serving
    without warnings answers none, and then the page must show none)."""
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    WARNING_SCREENSHOT.unlink(missing_ok=True)
    # larger than any house the served version saw, in a city it never saw (no warning: see
    # serving/ranges.py); the state stays the form's default
    house = replace(unusual_house(served_ui.serving), state=HouseInputs.state, city="Nowhereville")
    answer = served_ui.serving.post("/explain", json=house.record())
    assert answer.status_code == 200, answer.text
    expected = [warning_sentence(OodWarning.from_json(w)) for w in answer.json()["warnings"]]
    assert len(expected) == 1 and expected[0].startswith("Size "), expected
    log = served_ui.stack.workdir / "streamlit-warning.log"
    with streamlit_app(served_ui.env, log) as url:
        seen = shoot_unusual_house(url, WARNING_SCREENSHOT, house)
    assert seen["price"] == money(answer.json()["price"]), seen
    assert seen["warnings"] == expected, seen
    assert WARNING_SCREENSHOT.stat().st_size > 60_000


MONITORING_SCREENSHOT = ARTIFACTS / "ui-monitoring.png"
MODELS_SCREENSHOT = ARTIFACTS / "ui-models.png"


def shoot(url: str, path: Path, heading: str, charts: int, height: int) -> dict[str, object]:
    """A page by its URL once ``charts`` Vega charts are drawn; what a person sees. The page
    scrolls inside the app, so the viewport is as tall as the page to show all of it."""
    with browser_page(1440, height) as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text(heading, exact=True).first.wait_for(timeout=60_000)
        page.wait_for_function(  # every chart drawn (Vega draws each as an SVG)
            "n => document.querySelectorAll(\"[data-testid='stVegaLiteChart'] svg.marks\").length >= n",
            arg=charts,
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # the last charts' layout and the fonts
        seen = {
            "errors": page.locator("[data-testid='stAlertContentError']").all_inner_texts(),
            "warnings": page.locator("[data-testid='stAlertContentWarning']").all_inner_texts(),
            "charts": page.locator("[data-testid='stVegaLiteChart']").count(),
            "text": page.locator("[data-testid='stMain']").inner_text(),
        }
        page.screenshot(path=str(path), full_page=True)
    return seen


def test_monitoring_and_models_pages_screenshots(story_env, tmp_path: Path):
    """The Monitoring page on the story's live traffic (requests, drift per window, the newest
    window, shadow agreement) and the Models page's fair leaderboard, in Chromium."""
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path in (MONITORING_SCREENSHOT, MODELS_SCREENSHOT):
        path.unlink(missing_ok=True)
    log = tmp_path / "streamlit-monitoring.log"
    with streamlit_app(story_env, log) as url:
        monitoring = shoot(f"{url}/monitoring", MONITORING_SCREENSHOT, "Monitoring", 5, 3200)
        models = shoot(f"{url}/models", MODELS_SCREENSHOT, "Model versions", 1, 1500)
    assert monitoring["errors"] == [] and models["errors"] == [], log.read_text()[-3000:]
    assert monitoring["charts"] >= 5, (
        monitoring
    )  # requests, prices, newest window, per window, shadow
    assert "live drift, no labelled data yet" in str(monitoring["text"]).lower()
    assert "Not scored on this holdout: v1" in " ".join(models["warnings"])  # type: ignore[arg-type]
    assert MONITORING_SCREENSHOT.stat().st_size > 60_000
    with Image.open(MONITORING_SCREENSHOT) as image:
        assert image.width == 1440
