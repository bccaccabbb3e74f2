"""Pipeline: every batch, what validation and the drift check decided and why, its reports."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import page_kit
from ui.errors import SourceError
from ui.ledger_views import (
    batch_category,
    batch_label,
    drift_chart,
    interrupted,
    joined,
    legend_html,
    live_drift_warning,
    pipeline_frame,
    pipeline_totals,
    rows_chart,
    several_runs,
)
from ui.settings import UiSettings


def choose_run(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """With several (group, day) runs in the ledger, a person picks one (or all)."""
    if not several_runs(summaries):
        return summaries
    runs = sorted({(s["group_number"], s["day"]) for s in summaries})
    options = ["all", *[f"group {g}, {d}" for g, d in runs]]
    chosen = st.selectbox("Run", options, index=len(options) - 1, key="run")
    if chosen == "all":
        return summaries
    group, day = runs[options.index(chosen) - 1]
    return [s for s in summaries if s["group_number"] == group and s["day"] == day]


def totals(summaries: list[dict[str, Any]]) -> None:
    counts = pipeline_totals(summaries)
    columns = st.columns(5)
    columns[0].metric("Batches", counts["batches"], border=True)
    columns[1].metric("Rows fetched", f"{counts['rows']:,}", border=True)
    columns[2].metric("Quarantined", counts["quarantined"], border=True)
    columns[3].metric("Models trained", counts["trained"], border=True)
    columns[4].metric("Promoted", counts["promoted"], border=True)


def report_toggle(title: str, key: str | None, toggle_key: str) -> tuple[str, str] | None:
    """A switch that opens the report below the batch's cards: (title, key) when on."""
    if not key:
        st.caption(f"No {title.lower()} stored for this batch.")
        return None
    return (title, key) if st.toggle(f"Open the {title.lower()}", key=toggle_key) else None


def batch_details(settings: UiSettings, summaries: list[dict[str, Any]]) -> None:
    st.subheader("One batch in detail")
    many = several_runs(summaries)
    by_id = {s["batch_id"]: s for s in summaries}
    ids = list(by_id)
    chosen = st.selectbox(
        "Batch",
        ids,
        index=len(ids) - 1,
        format_func=lambda i: f"{batch_label(by_id[i], many)}: {by_id[i].get('outcome')}",
        key="batch",
    )
    s = by_id[chosen]
    validation, drift, model = st.columns(3, gap="medium")
    with validation, st.container(border=True):
        st.markdown("**Validation**")
        if s.get("validation_status") is None:
            st.caption("not validated yet")
        else:
            st.markdown(
                f"{s['validation_status']} ({s.get('validation_outcome')}): "
                f"{s.get('rows_out') or 0:,} of {s['rows']:,} rows kept, "
                f"{s.get('rows_dropped') or 0:,} dropped"
            )
            for reason in s.get("validation_reasons") or ["every expectation met"]:
                st.markdown(f"- {reason}")
            if s.get("schema_problems"):
                st.markdown(f"Schema problems: {joined(s['schema_problems'])}")
        opened = [
            report_toggle(
                "Validation report", s.get("validation_report_html_key"), f"validation-{chosen}"
            )
        ]
    with drift, st.container(border=True):
        st.markdown("**Drift check**")
        if s.get("decision") is None:
            st.caption("no decision yet" if batch_category(s) != "quarantined" else "quarantined")
        else:
            share = s.get("drift_share")
            share_text = (
                f"{share:.0%} of columns drifted" if share is not None else "no drift share"
            )
            st.markdown(f"decision **{s['decision']}** · {share_text}")
            for reason in s.get("decision_reasons") or ["no reason recorded"]:
                st.markdown(f"- {reason}")
        opened.append(
            report_toggle("Drift report", s.get("drift_report_html_key"), f"drift-{chosen}")
        )
    with model, st.container(border=True):
        st.markdown("**Training and promotion**")
        if not s.get("model_version"):
            st.caption("no model trained on this batch")
        else:
            mae, base = s.get("mae"), s.get("baseline_mae")
            mae_text = f"MAE ${mae:,.0f}" if isinstance(mae, int | float) else "MAE n/a"
            if isinstance(base, int | float):
                mae_text += f" (baseline ${base:,.0f})"
            st.markdown(f"trained **v{s['model_version']}** · {mae_text}")
            verdict = {True: "promoted", False: "rejected", None: "not evaluated yet"}[
                s.get("promoted")
            ]
            if s.get("promotion_held"):
                verdict = "held for its shadow period (re-run promote later)"
            st.markdown(f"**{verdict}**")
            for reason in s.get("promotion_reasons") or []:
                st.markdown(f"- {reason}")
    for title, key in filter(None, opened):
        page_kit.show_report(settings, f"{title} of batch {batch_label(s, many)}", key)


def live_drift() -> None:
    """Live drift that no batch took into account yet: never silent (tasks.core.story)."""
    settings = page_kit.get_settings()
    try:
        lines = page_kit.pending_live_drift(settings)
    except SourceError as error:
        page_kit.show_problem(error)
        return
    for line in lines:
        st.warning(live_drift_warning(line), icon=":material/trending_up:")


def main() -> None:
    settings = page_kit.get_settings()
    title, button = st.columns([6, 1], vertical_alignment="bottom")
    title.title("Pipeline decisions")
    with button:
        page_kit.refresh_button()
    try:
        summaries = page_kit.batches(settings)
    except SourceError as error:
        page_kit.show_problem(error)
        return
    if not summaries:
        st.info(
            "No batch has been fetched yet: run the pipeline (`make demo`), and every batch "
            "will show here with what each step decided and why.",
            icon=":material/info:",
        )
        return
    live_drift()
    summaries = choose_run(summaries)
    totals(summaries)
    stopped = [s for s in summaries if interrupted(s)]
    if stopped:
        many = several_runs(summaries)
        names = ", ".join(f"batch {batch_label(s, many)}" for s in stopped)
        st.warning(
            f"**Interrupted: {names}.** A run took it and did not end (no record row: the run "
            "was killed or a step failed, unless it is running now). The next run of "
            "`realtor_pipeline` finishes it before taking a new batch.",
            icon=":material/pause_circle:",
        )
    st.markdown(legend_html(), unsafe_allow_html=True)
    rows_column, drift_column = st.columns(2, gap="large")
    rows_column.altair_chart(rows_chart(summaries), width="stretch")
    drift_column.altair_chart(drift_chart(summaries), width="stretch")
    st.dataframe(
        pipeline_frame(summaries),
        hide_index=True,
        column_config={
            "rows": st.column_config.NumberColumn(format="localized"),
            "rows dropped": st.column_config.NumberColumn(format="localized"),
            "drift share": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0
            ),
            "why": st.column_config.TextColumn(width="large"),
            "MAE": st.column_config.NumberColumn(format="dollar", step=1),
        },
    )
    batch_details(settings, summaries)


main()
