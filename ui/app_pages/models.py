"""Models: every version with its metrics, which one is in production, and why."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui import page_kit
from ui.errors import SourceError
from ui.explain_plots import money
from ui.ledger_views import (
    IN_PRODUCTION,
    REJECTED,
    last_promoted_version,
    mae_chart,
    models_frame,
    production_entry,
    verdict,
)
from ui.settings import UiSettings

DOLLARS = {"format": "dollar", "step": 1}


def production_of(settings: UiSettings, history: list[dict[str, Any]]) -> str | None:
    """The registry's production version; the ledger's last promotion if the registry is down."""
    try:
        return page_kit.production_version(settings)
    except SourceError as error:
        fallback = last_promoted_version(history)
        st.warning(
            f"**{error.problem}**\n\n{error.fix}. Meanwhile, 'in production' below is the "
            f"ledger's last promoted version (v{fallback}).",
            icon=":material/warning:",
        )
        return fallback


def served_version(settings: UiSettings) -> tuple[str, str]:
    """(value, help) of the 'serving answers with' metric; never raises."""
    try:
        model = page_kit.served_model(settings)
    except SourceError as error:
        return "not answering", f"{error.problem}: {error.fix}"
    return f"v{model.get('version', '?')}", f"serving at {settings.ui_serving_url}"


def headline(settings: UiSettings, history: list[dict[str, Any]], production: str | None) -> None:
    current = production_entry(history, production)
    metrics = (current or {}).get("metrics") or {}
    mae, baseline = metrics.get("mae"), metrics.get("baseline_mae")
    verdicts = [verdict(e, production) for e in history]
    columns = st.columns(4)
    columns[0].metric(
        "In production",
        f"v{production}" if production else "none yet",
        border=True,
        height="stretch",
    )
    if isinstance(mae, int | float):
        delta = (
            f"{(mae - baseline) / baseline:+.0%} vs baseline"
            if isinstance(baseline, int | float) and baseline
            else None
        )
        columns[1].metric(
            "Its MAE",
            money(mae),
            delta,
            delta_color="inverse",
            border=True,
            height="stretch",
            help="mean absolute error in dollars on the holdout it was evaluated on",
        )
    else:
        columns[1].metric("Its MAE", "n/a", border=True, height="stretch")
    columns[2].metric(
        "Versions trained",
        len(history),
        f"{verdicts.count(REJECTED)} rejected",
        delta_color="off",
        delta_arrow="off",
        border=True,
        height="stretch",
    )
    value, help_text = served_version(settings)
    columns[3].metric("Serving answers with", value, border=True, height="stretch", help=help_text)


def details(history: list[dict[str, Any]], production: str | None) -> None:
    st.subheader("Why each version was trained, and promoted or rejected")
    versions = [str(e["model_version"]) for e in reversed(history)]
    chosen = st.selectbox(
        "Version",
        versions,
        format_func=lambda v: f"v{v}" + (" (in production)" if v == str(production) else ""),
        key="version",
    )
    entry = next(e for e in history if str(e["model_version"]) == chosen)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Why v{chosen} was trained** (batch {entry.get('batch_number')})")
        for reason in entry.get("training_reasons") or ["no reason recorded"]:
            st.markdown(f"- {reason}")
        batches = ", ".join(str(b) for b in entry.get("training_batch_ids") or [])
        st.caption(
            f"trained on batches (ids) {batches or 'n/a'} · MLflow run {entry.get('run_id')}"
        )
    with right:
        state = verdict(entry, production)
        st.markdown(f"**Verdict: {state}**")
        for reason in entry.get("promotion_reasons") or ["not evaluated yet"]:
            st.markdown(f"- {reason}")
        if entry.get("champion_version"):
            st.caption(f"compared with champion v{entry['champion_version']} on the same holdout")


def main() -> None:
    settings = page_kit.get_settings()
    title, button = st.columns([6, 1], vertical_alignment="bottom")
    title.title("Model versions")
    with button:
        page_kit.refresh_button()
    try:
        history = page_kit.model_history(settings)
    except SourceError as error:
        page_kit.show_problem(error)
        return
    if not history:
        st.info(
            f"No version of {settings.model_name} has been trained yet: run the pipeline "
            "(`make demo`), and every training will show here with its reasons.",
            icon=":material/info:",
        )
        return
    production = production_of(settings, history)
    headline(settings, history, production)
    st.subheader("MAE over versions")
    st.caption(
        "Lower is better. Each dot is a version, coloured by its verdict; the dashed line is "
        f"the baseline (each state's median price) on the same holdout. {IN_PRODUCTION.capitalize()}:"
        " ringed."
    )
    st.altair_chart(mae_chart(history, production), width="stretch")
    st.dataframe(
        models_frame(history, production),
        hide_index=True,
        column_config={
            "trained at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "MAE": st.column_config.NumberColumn(**DOLLARS),
            "baseline MAE": st.column_config.NumberColumn(**DOLLARS),
            "RMSE": st.column_config.NumberColumn(**DOLLARS),
            "R²": st.column_config.NumberColumn(format="%.3f"),
            "MAPE": st.column_config.NumberColumn(format="percent"),
            "why trained": st.column_config.TextColumn(width="large"),
            "why promoted or rejected": st.column_config.TextColumn(width="large"),
        },
    )
    details(history, production)


main()
