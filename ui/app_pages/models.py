"""Models: every version with its metrics, which one is in production, and why."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import page_kit
from ui.errors import SourceError
from ui.explain_plots import money
from ui.ledger_views import (
    COMMON_MAE,
    IN_PRODUCTION,
    NOT_SCORED,
    OWN_MAE,
    REJECTED,
    last_promoted_version,
    leaderboard_chart,
    models_frame,
    not_scored,
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
            help="mean absolute error in dollars on its own holdout (the one its promotion "
            "decision used); the chart below compares every version on one common holdout",
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


def details(settings: UiSettings, history: list[dict[str, Any]], production: str | None) -> None:
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
        run_id = entry.get("run_id")
        url = settings.mlflow_run_url(run_id)
        st.caption(
            f"trained on batches (ids) {batches or 'n/a'} · MLflow run "
            + (f"[{run_id}]({url})" if url else str(run_id))
        )
    with right:
        state = verdict(entry, production)
        st.markdown(f"**Verdict: {state}**")
        for reason in entry.get("promotion_reasons") or ["not evaluated yet"]:
            st.markdown(f"- {reason}")
        if entry.get("champion_version"):
            st.caption(f"compared with champion v{entry['champion_version']} on the same holdout")


def read_board(settings: UiSettings) -> dict[str, Any]:
    """The common holdout's scores; an empty board (and a red box) if the ledger fails."""
    try:
        return page_kit.leaderboard(settings)
    except SourceError as error:
        page_kit.show_problem(error)
        return {"holdout": None, "scores": {}}


def leaderboard(history: list[dict[str, Any]], production: str | None, board: dict) -> None:
    """Every version on ONE holdout, the newest; the versions without a score there listed."""
    st.subheader("Every version on the same rows")
    unscored = not_scored(history, board)
    if board.get("holdout") is None or len(unscored) == len(history):
        st.info(
            "No version has been scored on a common holdout yet. promote scores every "
            "registered version on the newest training's holdout after its verdict; to score "
            "them now, run `python -m tasks.promote --leaderboard`.",
            icon=":material/info:",
        )
        return
    st.caption(
        "Lower is better. Each version's decision was taken on its own holdout, so those numbers "
        "(in the table) cannot be compared across versions; here every version is scored on "
        "the same rows, the holdout of the newest training. Dots are coloured by verdict; "
        f"{IN_PRODUCTION} is ringed."
    )
    st.altair_chart(leaderboard_chart(history, production, board), width="stretch")
    if unscored:
        st.warning(
            f"**Not scored on this holdout: {', '.join(unscored)}** (left out of the chart, "
            "never plotted from another holdout). A version that could not be loaded is named "
            "in promote's log (`leaderboard_skipped`); `python -m tasks.promote --leaderboard` "
            "tries again.",
            icon=":material/help:",
        )


def table(
    settings: UiSettings, history: list[dict[str, Any]], production: str | None, board: dict
) -> None:
    frame = models_frame(history, production, board, settings.mlflow_run_url)
    frame[COMMON_MAE] = [NOT_SCORED if pd.isna(v) else money(v) for v in frame[COMMON_MAE]]
    links = bool(settings.ui_mlflow_url)
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            COMMON_MAE: st.column_config.TextColumn(
                help="on the newest training's holdout: the same rows for every version"
            ),
            OWN_MAE: st.column_config.NumberColumn(
                **DOLLARS, help="on the holdout of its own training: what its promotion compared"
            ),
            "baseline MAE (own holdout)": st.column_config.NumberColumn(**DOLLARS),
            "RMSE (own holdout)": st.column_config.NumberColumn(**DOLLARS),
            "R²": st.column_config.NumberColumn(format="%.3f"),
            "MAPE": st.column_config.NumberColumn(format="percent"),
            "trained at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "why trained": st.column_config.TextColumn(width="large"),
            "why promoted or rejected": st.column_config.TextColumn(width="large"),
            "MLflow run": (
                st.column_config.LinkColumn(display_text=r"#/runs/(\w{8})")
                if links
                else st.column_config.TextColumn()
            ),
        },
    )
    if not links:
        st.caption(
            "MLflow runs are shown by id: set UI_MLFLOW_URL (the MLflow UI's address, in `.env` "
            "or the UI's environment, see ui/settings.py) to link each version to its run."
        )


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
    board = read_board(settings)
    leaderboard(history, production, board)
    table(settings, history, production, board)
    details(settings, history, production)


main()
