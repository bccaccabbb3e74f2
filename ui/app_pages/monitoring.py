"""Monitoring: live traffic, the drift of live inputs against the training data, and the shadow
challengers' agreement with production.

Everything comes from the ledger, aggregated by the database (the inference log can hold
millions of rows): ``inference_log`` per hour, ``monitor_windows`` (what ``tasks.monitor``
found), ``shadow_predictions`` per challenger. The newest window's Evidently report is read
from the lake when it is opened.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import page_kit
from ui.errors import SourceError
from ui.ledger_views import (
    DECISION_TEXT,
    drift_over_windows_chart,
    feature_scores_frame,
    joined,
    prices_chart,
    requests_chart,
    requests_frame,
    shadow_chart,
    shadow_frame,
    window_bars,
    window_state,
    windows_frame,
)
from ui.settings import UiSettings

DECISION_ICONS = {
    "stable": ":material/check_circle:",
    "drifted": ":material/warning:",
    "too_few_rows": ":material/hourglass_empty:",
}


def traffic(data: dict[str, Any]) -> None:
    st.subheader("Live traffic")
    if not data["requests"]:
        st.info(
            "No request logged yet: serving logs every prediction to the ledger's "
            "inference_log. Start it (`make serve`) and ask for a price on the Predict page.",
            icon=":material/info:",
        )
        return
    frame = requests_frame(data["requests"])
    columns = st.columns(3)
    columns[0].metric("Requests shown", f"{int(frame['requests'].sum()):,}", border=True)
    columns[1].metric(
        "Hours with traffic", f"{frame['hour'].nunique():,}", border=True, help="up to 7 days"
    )
    columns[2].metric(
        "Newest request hour", frame["hour"].max().strftime("%Y-%m-%d %H:00 UTC"), border=True
    )
    left, right = st.columns(2, gap="large")
    left.altair_chart(requests_chart(data["requests"]), width="stretch")
    right.altair_chart(prices_chart(data["requests"]), width="stretch")


def newest_window(settings: UiSettings, window: dict[str, Any]) -> None:
    """The live-versus-training comparison of the newest window, with its report."""
    end = window["window_end"].strftime("%Y-%m-%d %H:%M UTC") if window["window_end"] else "?"
    version = f"v{window['model_version']}" if window.get("model_version") else "no model"
    st.markdown(
        f"**Newest window** (ended {end}, {window['rows']:,} requests, against the training "
        f"data of {version})"
    )
    decision = window["decision"]
    share = window.get("drift_share")
    share_text = f" · drift share {share:.0%}" if isinstance(share, int | float) else ""
    text = f"**{window_state(window)}**{share_text}\n\n" + "\n".join(
        f"- {reason}" for reason in window.get("reasons") or ["no reason recorded"]
    )
    icon = DECISION_ICONS.get(decision, ":material/info:")
    if decision == "drifted":
        st.warning(text, icon=icon)
    elif decision == "stable":
        st.success(text, icon=icon)
    else:
        st.info(text, icon=icon)
    if window.get("feature_scores"):
        chart, table = st.columns([3, 2], gap="large")
        chart.altair_chart(window_bars(window), width="stretch")
        table.dataframe(
            feature_scores_frame(window),
            hide_index=True,
            column_config={"score": st.column_config.NumberColumn(format="%.3f")},
        )
    key = window.get("report_html_key")
    if not key:
        st.caption("No report stored for this window (a window with too few rows has none).")
    elif st.toggle("Open the live-versus-training report (Evidently)", key="window-report"):
        page_kit.show_report(settings, f"Drift report of the window ending {end}", key)


def drift(settings: UiSettings, windows: list[dict[str, Any]]) -> None:
    st.subheader("Live inputs against the training data")
    if not windows:
        st.info(
            "No monitor window yet: the realtor_monitor DAG runs hourly (or run "
            "`python -m tasks.monitor`), comparing the logged requests with the production "
            "model's training data.",
            icon=":material/info:",
        )
        return
    for line in page_kit.pending_live_drift(settings):  # the Pipeline page's words, too
        st.warning(
            f"{line}. A drifted window starts realtor_pipeline; until the data API serves a "
            "new labelled batch, there is nothing to retrain on.",
            icon=":material/report:",
        )
    newest_window(settings, windows[-1])
    consumed = [w for w in windows if w.get("consumed") and w.get("feature_scores")]
    if len(consumed) > 1:
        st.markdown("**Each feature's drift per window** (dashed red: its threshold)")
        st.altair_chart(drift_over_windows_chart(consumed), width="content")
    st.dataframe(
        windows_frame(windows),
        hide_index=True,
        column_config={
            "window end": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "rows": st.column_config.NumberColumn(format="localized"),
            "drift share": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0
            ),
            "why": st.column_config.TextColumn(width="large"),
        },
    )
    st.caption("Decisions: " + joined(DECISION_TEXT.values()))


def shadow(data: dict[str, Any]) -> None:
    st.subheader("Shadow challengers")
    if not data["shadow"]:
        st.info(
            "Shadow off: set SERVING_SHADOW=true, and serving scores a sample of live requests "
            "with the `challenger` version too, off the request path (answers always come from "
            "production).",
            icon=":material/info:",
        )
        return
    st.caption(
        "Each challenger against the production version that answered the same requests: "
        "two prices are more than 10% apart when one exceeds the other by more than 10%."
    )
    st.dataframe(
        shadow_frame(data["shadow"]),
        hide_index=True,
        column_config={
            "predictions compared": st.column_config.NumberColumn(format="localized"),
            "median |Δ log10 price|": st.column_config.NumberColumn(format="%.3f"),
            "share > 10% apart": st.column_config.NumberColumn(format="percent"),
            "first": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "last": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )
    if len(data["shadow_hours"]) > 1:
        st.altair_chart(shadow_chart(data["shadow_hours"]), width="stretch")


def main() -> None:
    settings = page_kit.get_settings()
    title, button = st.columns([6, 1], vertical_alignment="bottom")
    title.title("Monitoring")
    with button:
        page_kit.refresh_button()
    try:
        data = page_kit.monitoring(settings)
    except SourceError as error:
        page_kit.show_problem(error)
        return
    traffic(data)
    drift(settings, data["windows"])
    shadow(data)


main()
