"""The ledger's stories as tables and charts: pure functions from plain dicts to displays.

Inputs are what :mod:`tasks.core.story` returns (``model_history`` entries and
``batch_summaries``); outputs are pandas frames for ``st.dataframe`` and Altair charts. No I/O,
no Streamlit: the tests call these directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import altair as alt
import pandas as pd

IN_PRODUCTION = "in production"
PROMOTED = "promoted, since replaced"
REJECTED = "rejected"
HELD = "held for its shadow period"
NOT_EVALUATED = "not evaluated yet"
VERDICT_COLOURS: dict[str, str] = {
    IN_PRODUCTION: "#1a9850",
    PROMOTED: "#91cf60",
    REJECTED: "#d73027",
    HELD: "#fdae61",
    NOT_EVALUATED: "#999999",
}

QUARANTINED = "quarantined"
SKIPPED = "curated, training skipped"
TRAINED_PROMOTED = "trained, promoted"
TRAINED_REJECTED = "trained, rejected"
IN_PROGRESS = "in progress"
INTERRUPTED = "interrupted"
#: the outcome text of a validated batch whose run has no record row
INTERRUPTED_NOTE = "interrupted: no record row (or running now); the next run finishes it"
BATCH_COLOURS: dict[str, str] = {
    TRAINED_PROMOTED: "#1a9850",
    TRAINED_REJECTED: "#fc8d59",
    SKIPPED: "#4575b4",
    QUARANTINED: "#d73027",
    IN_PROGRESS: "#999999",
    INTERRUPTED: "#984ea3",
}


def joined(reasons: Sequence[str] | None) -> str:
    return " · ".join(str(r) for r in reasons or []) or "—"


def _version_key(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), text) if text.isdigit() else (10**9, text)


# --- Models ---------------------------------------------------------------------------------


def verdict(entry: dict[str, Any], production: str | None) -> str:
    """What became of a version: in production, promoted (since replaced), rejected, held for
    its shadow period (promote evaluates it again when re-run), pending."""
    if production is not None and str(entry["model_version"]) == str(production):
        return IN_PRODUCTION
    if entry.get("promoted") is True:
        return PROMOTED
    if entry.get("promotion_held"):
        return HELD
    if entry.get("promoted") is False:
        return REJECTED
    return NOT_EVALUATED


def production_entry(
    history: Sequence[dict[str, Any]], production: str | None
) -> dict[str, Any] | None:
    return next((e for e in history if str(e["model_version"]) == str(production)), None)


def last_promoted_version(history: Sequence[dict[str, Any]]) -> str | None:
    """The ledger's idea of production: the newest promoted version (when the registry is down)."""
    promoted = [e for e in history if e.get("promoted") is True]
    if not promoted:
        return None
    return str(
        max(promoted, key=lambda e: e.get("evaluated_at") or e["trained_at"])["model_version"]
    )


NOT_SCORED = "not scored"
#: the table's two MAE columns, labelled so that nobody compares them with each other
COMMON_MAE = "MAE on the common holdout"
OWN_MAE = "MAE its decision used (own holdout)"


def holdout_title(board: dict[str, Any]) -> str:
    """The chart's title: which rows every version was scored on."""
    holdout = board.get("holdout") or {}
    batch = holdout.get("batch_number") or holdout.get("batch_id")
    rows = holdout.get("rows")
    size = f" ({rows:,} rows)" if isinstance(rows, int) else ""
    return f"MAE on the holdout of batch {batch}{size}, every version"


def common_mae(board: dict[str, Any], version: Any) -> float | None:
    """``version``'s MAE on the common holdout; None when it has no score on that holdout."""
    score = (board.get("scores") or {}).get(str(version))
    return float(score["mae"]) if score and isinstance(score.get("mae"), int | float) else None


def not_scored(history: Sequence[dict[str, Any]], board: dict[str, Any]) -> list[str]:
    """The versions without a score on the common holdout (listed, never plotted)."""
    return [
        f"v{e['model_version']}"
        for e in sorted(history, key=lambda e: _version_key(e["model_version"]))
        if common_mae(board, e["model_version"]) is None
    ]


def models_frame(
    history: Sequence[dict[str, Any]],
    production: str | None,
    board: dict[str, Any] | None = None,
    run_url: Callable[[str | None], str | None] | None = None,
) -> pd.DataFrame:
    """One row per model version, newest first: its MAE on the common holdout beside the
    metrics its own decision used, its verdict and reasons, and its MLflow run (a link when
    ``run_url`` gives one, else the run id)."""
    board = board or {}
    rows = []
    for entry in sorted(history, key=lambda e: _version_key(e["model_version"]), reverse=True):
        metrics = entry.get("metrics") or {}
        run_id = entry.get("run_id")
        rows.append(
            {
                "version": f"v{entry['model_version']}",
                "verdict": verdict(entry, production),
                COMMON_MAE: common_mae(board, entry["model_version"]),
                OWN_MAE: metrics.get("mae"),
                "baseline MAE (own holdout)": metrics.get("baseline_mae"),
                "RMSE (own holdout)": metrics.get("rmse"),
                "R²": metrics.get("r2"),
                "MAPE": metrics.get("mape"),
                "trained at": pd.to_datetime(entry.get("trained_at"), utc=True),
                "batch": entry.get("batch_number"),
                "why trained": joined(entry.get("training_reasons")),
                "why promoted or rejected": joined(entry.get("promotion_reasons")),
                "trained on batches": ", ".join(
                    str(b) for b in entry.get("training_batch_ids") or []
                ),
                "MLflow run": (run_url(run_id) if run_url else None) or run_id,
            }
        )
    columns = [
        "version", "verdict", COMMON_MAE, OWN_MAE, "baseline MAE (own holdout)",
        "RMSE (own holdout)", "R²", "MAPE", "trained at", "batch", "why trained",
        "why promoted or rejected", "trained on batches", "MLflow run",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def leaderboard_data(
    history: Sequence[dict[str, Any]], production: str | None, board: dict[str, Any]
) -> pd.DataFrame:
    """The chart's data: one row per version scored on the common holdout, oldest first.
    Versions without such a score are absent (see :func:`not_scored`): no other holdout."""
    rows = []
    for entry in sorted(history, key=lambda e: _version_key(e["model_version"])):
        mae = common_mae(board, entry["model_version"])
        if mae is None:
            continue
        own = (entry.get("metrics") or {}).get("mae")
        rows.append(
            {
                "version": f"v{entry['model_version']}",
                "verdict": verdict(entry, production),
                "dollars": mae,
                "own": float(own) if isinstance(own, int | float) else None,
                "why": joined(entry.get("promotion_reasons")),
            }
        )
    return pd.DataFrame(rows, columns=["version", "verdict", "dollars", "own", "why"])


def leaderboard_chart(
    history: Sequence[dict[str, Any]], production: str | None, board: dict[str, Any]
) -> alt.LayerChart:
    """Every version's MAE on the ONE common holdout (coloured by verdict, production ringed)."""
    data = leaderboard_data(history, production, board)
    order = list(data["version"])
    top = float(data["dollars"].max()) * 1.15 if not data.empty else 1.0
    x = alt.X("version:N", sort=order, title="model version", axis=alt.Axis(labelAngle=0))
    y = alt.Y(
        "dollars:Q",
        title="MAE on the common holdout ($)",
        axis=alt.Axis(format="$,.0f", tickCount=6),
        scale=alt.Scale(domain=[0, top], nice=False),
    )
    tooltip = [
        alt.Tooltip("version:N"),
        alt.Tooltip("dollars:Q", title="MAE on the common holdout", format="$,.0f"),
        alt.Tooltip("own:Q", title="MAE its decision used (own holdout)", format="$,.0f"),
        alt.Tooltip("verdict:N"),
        alt.Tooltip("why:N", title="why"),
    ]
    base = alt.Chart(data)
    line = base.mark_line(strokeWidth=2, color="#555555").encode(x=x, y=y)
    points = base.mark_circle(size=140, opacity=1).encode(
        x=x,
        y=y,
        color=alt.Color(
            "verdict:N",
            title=None,
            scale=alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values())),
            legend=alt.Legend(orient="top", labelLimit=0),
        ),
        tooltip=tooltip,
    )
    current = base.transform_filter(alt.datum.verdict == IN_PRODUCTION)
    ring = current.mark_point(
        size=520, strokeWidth=2.5, color=VERDICT_COLOURS[IN_PRODUCTION]
    ).encode(x=x, y=y)
    label = current.mark_text(
        dy=-22, fontWeight="bold", color=VERDICT_COLOURS[IN_PRODUCTION]
    ).encode(x=x, y=y, text=alt.value("production"))
    return alt.layer(line, points, ring, label).properties(title=holdout_title(board))


# --- Pipeline -------------------------------------------------------------------------------


def interrupted(summary: dict[str, Any]) -> bool:
    """A batch a run validated and did not end (no record row: killed, or running now)."""
    return summary.get("recorded") is False and summary.get("validation_status") is not None


LIVE_DRIFT_PREFIX = "live drift, no labelled data yet: "


def live_drift_warning(line: str) -> str:
    """A "live drift, no labelled data yet" line of the story as the page's warning box text,
    with what happens next (the next batch the API serves takes the window as a reason)."""
    head, found, rest = line.partition(LIVE_DRIFT_PREFIX)
    body = rest if found and not head else line
    return (
        f"**Live drift, no labelled data yet:** {body}. The next batch the API serves is "
        "checked with this window as a reason to retrain."
    )


def batch_outcome(summary: dict[str, Any]) -> str:
    """The outcome text, with the interruption said when the run did not end."""
    outcome = summary.get("outcome") or batch_category(summary)
    return f"{outcome} · {INTERRUPTED_NOTE}" if interrupted(summary) else outcome


def batch_category(summary: dict[str, Any]) -> str:
    """What happened to a batch, as one of six colours of the pipeline chart."""
    if summary.get("validation_status") == "quarantined":
        return QUARANTINED
    if summary.get("decision") == "skip":
        return SKIPPED
    if summary.get("promoted") is True:
        return TRAINED_PROMOTED
    if summary.get("promoted") is False:
        return TRAINED_REJECTED
    return INTERRUPTED if interrupted(summary) else IN_PROGRESS


def batch_label(summary: dict[str, Any], several_runs: bool) -> str:
    """``#3``, or ``g1 Tuesday #3`` when the ledger holds several (group, day) runs."""
    number = f"#{summary['batch_number']}"
    if several_runs:
        return f"g{summary['group_number']} {summary['day']} {number}"
    return number


def several_runs(summaries: Sequence[dict[str, Any]]) -> bool:
    return len({(s["group_number"], s["day"]) for s in summaries}) > 1


def _validation_text(summary: dict[str, Any]) -> str:
    status, outcome = summary.get("validation_status"), summary.get("validation_outcome")
    if status is None:
        return "not validated yet"
    return f"{status} ({outcome})" if outcome else str(status)


def pipeline_frame(summaries: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per batch, in the order the pipeline saw them."""
    many = several_runs(summaries)
    rows = []
    for s in summaries:
        promoted = s.get("promoted")
        rows.append(
            {
                "batch": batch_label(s, many),
                "rows": s.get("rows"),
                "validation": _validation_text(s),
                "rows dropped": s.get("rows_dropped"),
                "drift share": s.get("drift_share"),
                "decision": s.get("decision") or "—",
                "why": joined(s.get("decision_reasons") or s.get("validation_reasons")),
                "model": f"v{s['model_version']}" if s.get("model_version") else "—",
                "MAE": s.get("mae"),
                "promoted": "—"
                if promoted is None
                else ("yes" if promoted else ("held" if s.get("promotion_held") else "no")),
                "outcome": batch_outcome(s),
            }
        )
    columns = [
        "batch", "rows", "validation", "rows dropped", "drift share", "decision", "why",
        "model", "MAE", "promoted", "outcome",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def pipeline_totals(summaries: Sequence[dict[str, Any]]) -> dict[str, int]:
    categories = [batch_category(s) for s in summaries]
    return {
        "batches": len(summaries),
        "rows": int(sum(int(s.get("rows") or 0) for s in summaries)),
        "quarantined": categories.count(QUARANTINED),
        "trained": sum(1 for s in summaries if s.get("model_version")),
        "promoted": categories.count(TRAINED_PROMOTED),
    }


def pipeline_chart_data(summaries: Sequence[dict[str, Any]]) -> pd.DataFrame:
    many = several_runs(summaries)
    return pd.DataFrame(
        [
            {
                "batch": batch_label(s, many),
                "order": i,
                "rows": int(s.get("rows") or 0),
                "what happened": batch_category(s),
                "drift share": s.get("drift_share"),
                "outcome": batch_outcome(s),
                "why": joined(s.get("decision_reasons") or s.get("validation_reasons")),
            }
            for i, s in enumerate(summaries)
        ],
        columns=["batch", "order", "rows", "what happened", "drift share", "outcome", "why"],
    )


def _batch_encodings(data: pd.DataFrame) -> tuple[alt.X, alt.Color, list]:
    x = alt.X("batch:N", sort=list(data["batch"]), title="batch", axis=alt.Axis(labelAngle=0))
    colour = alt.Color(
        "what happened:N",
        title=None,
        scale=alt.Scale(domain=list(BATCH_COLOURS), range=list(BATCH_COLOURS.values())),
        legend=None,
    )
    tooltip = [
        alt.Tooltip("batch:N"),
        alt.Tooltip("rows:Q", format=","),
        alt.Tooltip("outcome:N"),
        alt.Tooltip("drift share:Q", format=".0%"),
        alt.Tooltip("why:N"),
    ]
    return x, colour, tooltip


def legend_html() -> str:
    """The colours of the pipeline charts, once for both (a legend inside one chart would
    squeeze it)."""
    items = (
        f"<span style='white-space:nowrap;margin-right:1.2rem'>"
        f"<span style='display:inline-block;width:.8rem;height:.8rem;background:{colour};"
        f"border-radius:2px;margin-right:.35rem;vertical-align:-1px'></span>{name}</span>"
        for name, colour in BATCH_COLOURS.items()
    )
    return "<div style='font-size:.9rem'>" + "".join(items) + "</div>"


def rows_chart(summaries: Sequence[dict[str, Any]]) -> alt.Chart:
    """Rows per batch, coloured by what happened to the batch."""
    data = pipeline_chart_data(summaries)
    x, colour, tooltip = _batch_encodings(data)
    return (
        alt.Chart(data, title="Rows per batch, coloured by what happened")
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("rows:Q", title="rows", axis=alt.Axis(format=",.0f")),
            color=colour,
            tooltip=tooltip,
        )
        .properties(height=280)
    )


def drift_chart(summaries: Sequence[dict[str, Any]]) -> alt.Chart:
    """Each batch's share of drifted columns (batches without a drift check are left out)."""
    data = pipeline_chart_data(summaries)
    x, colour, tooltip = _batch_encodings(data)
    return (
        alt.Chart(data, title="Share of drifted columns, by batch")
        .transform_filter("isValid(datum['drift share'])")
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y(
                "drift share:Q",
                title="drift share",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            color=colour,
            tooltip=tooltip,
        )
        .properties(height=280)
    )


# --- Monitoring -----------------------------------------------------------------------------

DECISION_TEXT = {"stable": "stable", "drifted": "drifted", "too_few_rows": "too few rows"}
DRIFTED_COLOURS = {"drifted": "#d73027", "not drifted": "#4575b4"}
#: a drifted window no drift_check has taken as a reason yet
NO_LABELLED_DATA = "live drift, no labelled data yet"


def _utc(value: Any) -> pd.Timestamp:
    return pd.to_datetime(value, utc=True)


def window_state(window: dict[str, Any], latest_consumed_id: int | None = None) -> str:
    """The window's decision in words; a drifted window no batch acted on says so.

    Only the latest window that read its rows is a reason for drift_check (as in
    :func:`tasks.core.story.pending_live_drift`): an older drifted window nobody took was
    replaced, and says that rather than waiting for data forever.
    """
    text = DECISION_TEXT.get(window["decision"], window["decision"])
    if window["decision"] == "drifted" and window.get("acted_on_batch_id") is None:
        if latest_consumed_id is not None and window["id"] != latest_consumed_id:
            return f"{text}: replaced by a newer window before a batch took it"
        return f"{text}: {NO_LABELLED_DATA}"
    if window["decision"] == "drifted":
        return f"{text}: a reason of batch {window['acted_on_batch_id']}'s drift check"
    return text


def requests_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Requests and predicted prices per hour and version (the database's aggregates)."""
    frame = pd.DataFrame(
        [
            {
                "hour": _utc(r["hour"]),
                "version": f"v{r['model_version']}",
                "requests": int(r["requests"]),
                "mean price": float(r["mean_price"]),
                "lowest price": float(r["min_price"]),
                "highest price": float(r["max_price"]),
            }
            for r in rows
        ],
        columns=["hour", "version", "requests", "mean price", "lowest price", "highest price"],
    )
    return frame


def requests_chart(rows: Sequence[dict[str, Any]]) -> alt.Chart:
    """Requests per hour, stacked by the version that answered."""
    data = requests_frame(rows)
    return (
        alt.Chart(data, title="Requests per hour")
        .mark_bar()
        .encode(
            x=alt.X("hour:T", title="hour (UTC)"),
            y=alt.Y("sum(requests):Q", title="requests", axis=alt.Axis(format=",.0f")),
            color=alt.Color("version:N", title="answered by", legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                alt.Tooltip("version:N"),
                alt.Tooltip("requests:Q", format=","),
            ],
        )
    )


def prices_chart(rows: Sequence[dict[str, Any]]) -> alt.LayerChart:
    """Predicted prices per hour: the mean as a line, lowest to highest as a band (log scale)."""
    data = requests_frame(rows)
    x = alt.X("hour:T", title="hour (UTC)")
    y_scale = alt.Scale(type="log")
    colour = alt.Color("version:N", title="answered by", legend=alt.Legend(orient="top"))
    band = (
        alt.Chart(data)
        .mark_area(opacity=0.15)
        .encode(
            x=x,
            y=alt.Y("lowest price:Q", scale=y_scale, title="predicted price ($, log scale)"),
            y2="highest price:Q",
            color=colour,
        )
    )
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("mean price:Q", scale=y_scale, axis=alt.Axis(format="$,.0s")),
            color=colour,
            tooltip=[
                alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                alt.Tooltip("version:N"),
                alt.Tooltip("requests:Q", format=","),
                alt.Tooltip("mean price:Q", format="$,.0f"),
                alt.Tooltip("lowest price:Q", format="$,.0f"),
                alt.Tooltip("highest price:Q", format="$,.0f"),
            ],
        )
    )
    return alt.layer(band, line, title="Predicted prices per hour (mean; band: lowest to highest)")


def feature_scores_frame(window: dict[str, Any]) -> pd.DataFrame:
    """One row per feature of a window: method, score, threshold, drifted."""
    rows = []
    for feature, found in sorted((window.get("feature_scores") or {}).items()):
        score = found.get("score")
        rows.append(
            {
                "feature": feature,
                "method": found.get("method"),
                "score": float(score) if isinstance(score, int | float) else None,
                "threshold": found.get("threshold"),
                "drifted": "drifted" if found.get("drifted") else "not drifted",
            }
        )
    return pd.DataFrame(rows, columns=["feature", "method", "score", "threshold", "drifted"])


def window_bars(window: dict[str, Any]) -> alt.LayerChart:
    """The newest window's score per feature (red: drifted), each with its threshold tick."""
    data = feature_scores_frame(window)
    y = alt.Y("feature:N", title=None, sort=list(data["feature"]))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("score:Q", title="drift score (a distance: drifted at or above the threshold)"),
            y=y,
            color=alt.Color(
                "drifted:N",
                title=None,
                scale=alt.Scale(domain=list(DRIFTED_COLOURS), range=list(DRIFTED_COLOURS.values())),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=["feature:N", "method:N", alt.Tooltip("score:Q", format=".3f"), "threshold:Q"],
        )
    )
    ticks = (
        alt.Chart(data)
        .mark_tick(color="black", thickness=3, size=22)
        .encode(x="threshold:Q", y=y, tooltip=["feature:N", "threshold:Q"])
    )
    return alt.layer(bars, ticks).properties(height=alt.Step(28))


def drift_long(windows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Each feature's score and threshold per window (consumed windows only: the others read
    no rows), for the chart of drift over windows."""
    rows = []
    for window in windows:
        if not window.get("consumed"):
            continue
        for feature, found in (window.get("feature_scores") or {}).items():
            score = found.get("score")
            if not isinstance(score, int | float):
                continue
            rows.append(
                {
                    "window end": _utc(window["window_end"]),
                    "feature": feature,
                    "score": float(score),
                    "threshold": float(found.get("threshold") or 0.0),
                    "drifted": "drifted" if found.get("drifted") else "not drifted",
                    "method": found.get("method"),
                    "rows": window.get("rows"),
                }
            )
    return pd.DataFrame(
        rows,
        columns=["window end", "feature", "score", "threshold", "drifted", "method", "rows"],
    )


def drift_over_windows_chart(windows: Sequence[dict[str, Any]]) -> alt.FacetChart:
    """One small chart per feature: its score per window, and its threshold as a dashed line."""
    data = drift_long(windows)
    x = alt.X("window end:T", title="window end (UTC)")
    line = alt.Chart().mark_line(color="#555555").encode(x=x, y=alt.Y("score:Q", title="score"))
    points = (
        alt.Chart()
        .mark_circle(size=60, opacity=1)
        .encode(
            x=x,
            y="score:Q",
            color=alt.Color(
                "drifted:N",
                title=None,
                scale=alt.Scale(domain=list(DRIFTED_COLOURS), range=list(DRIFTED_COLOURS.values())),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("window end:T", format="%Y-%m-%d %H:%M"),
                "feature:N",
                "method:N",
                alt.Tooltip("score:Q", format=".3f"),
                "threshold:Q",
                alt.Tooltip("rows:Q", format=","),
            ],
        )
    )
    threshold = (
        alt.Chart().mark_line(color="#d73027", strokeDash=[6, 4]).encode(x=x, y="threshold:Q")
    )
    return (
        alt.layer(line, threshold, points, data=data)
        .properties(width=260, height=140)
        .facet(facet=alt.Facet("feature:N", title=None), columns=3)
        .resolve_scale(y="independent")
    )


def windows_frame(windows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per monitor window, newest first."""
    latest = max((w["id"] for w in windows if w.get("consumed")), default=None)
    rows = [
        {
            "window end": _utc(w["window_end"]),
            "rows": w.get("rows"),
            "model": f"v{w['model_version']}" if w.get("model_version") else "—",
            "decision": window_state(w, latest),
            "drift share": w.get("drift_share"),
            "why": joined(w.get("reasons")),
        }
        for w in sorted(windows, key=lambda w: w["id"], reverse=True)
    ]
    return pd.DataFrame(
        rows, columns=["window end", "rows", "model", "decision", "drift share", "why"]
    )


def shadow_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Shadow agreement per challenger (and the production version it was compared with)."""
    return pd.DataFrame(
        [
            {
                "challenger": f"v{r['challenger_version']}",
                "against production": f"v{r['production_version']}",
                "predictions compared": int(r["compared"]),
                "median |Δ log10 price|": r.get("median_abs_log_diff"),
                "share > 10% apart": float(r["share_apart"]),
                "first": _utc(r["first"]),
                "last": _utc(r["last"]),
            }
            for r in rows
        ],
        columns=[
            "challenger", "against production", "predictions compared", "median |Δ log10 price|",
            "share > 10% apart", "first", "last",
        ],
    )  # fmt: skip


def shadow_chart(hours: Sequence[dict[str, Any]]) -> alt.Chart:
    """The share of shadow predictions more than 10% from production's, per hour."""
    data = pd.DataFrame(
        [
            {
                "hour": _utc(h["hour"]),
                "challenger": f"v{h['challenger_version']}",
                "compared": int(h["compared"]),
                "share apart": float(h["share_apart"]),
            }
            for h in hours
        ],
        columns=["hour", "challenger", "compared", "share apart"],
    )
    return (
        alt.Chart(data, title="Share of requests more than 10% apart, per hour")
        .mark_line(point=True)
        .encode(
            x=alt.X("hour:T", title="hour (UTC)"),
            y=alt.Y(
                "share apart:Q",
                title="share > 10% apart",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            color=alt.Color("challenger:N", legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"),
                "challenger:N",
                alt.Tooltip("compared:Q", format=","),
                alt.Tooltip("share apart:Q", format=".0%"),
            ],
        )
    )
