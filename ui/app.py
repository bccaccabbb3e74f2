"""The Streamlit app: ``streamlit run ui/app.py``.

Four pages: Predict (a price and why), Models (every version, its metrics and verdict, and every
version on one common holdout), Pipeline (every batch and every decision, with its reports) and
Monitoring (live traffic, live drift, shadow challengers). Configuration: ``ui/settings.py``.
"""

from __future__ import annotations

import logging

import streamlit as st

log = logging.getLogger("ui")

st.set_page_config(page_title="Realtor price model", page_icon=":material/home:", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/predict.py", title="Predict", icon=":material/sell:", default=True),
        st.Page("app_pages/models.py", title="Models", icon=":material/monitoring:"),
        st.Page("app_pages/pipeline.py", title="Pipeline", icon=":material/account_tree:"),
        st.Page("app_pages/monitoring.py", title="Monitoring", icon=":material/troubleshoot:"),
    ],
    position="top",
)
try:
    page.run()
except Exception as exc:  # the last net: a person sees a sentence, the log keeps the trace
    log.exception("page %s failed", page.title)
    st.error(
        f"**The {page.title} page failed unexpectedly: {exc.__class__.__name__}: {exc}**\n\n"
        "The details are in the app's log; please report them with what you did.",
        icon=":material/error:",
    )
