"""The Predict page in a real browser: ``streamlit run ui/app.py`` with serving behind it,
headless Chromium, a screenshot saved at ``var/test-artifacts/ui-predict.png``."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.support.browser import ARTIFACTS, browser_page, require_chromium
from tests.ui.conftest import ServedUi
from tests.ui.streamlit_process import streamlit_app

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
