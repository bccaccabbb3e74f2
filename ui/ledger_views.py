"""The ledger's stories as tables and charts: pure functions from plain dicts to displays.

Inputs are what :mod:`tasks.core.story` returns (``model_history`` entries and
``batch_summaries``); outputs are pandas frames for ``st.dataframe`` and Altair charts. No I/O,
no Streamlit: the tests call these directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

IN_PRODUCTION = "in production"
PROMOTED = "promoted, since replaced"
REJECTED = "rejected"
NOT_EVALUATED = "not evaluated yet"
VERDICT_COLOURS: dict[str, str] = {
    IN_PRODUCTION: "#1a9850",
    PROMOTED: "#91cf60",
    REJECTED: "#d73027",
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
    """What became of a version: in production, promoted (since replaced), rejected, pending."""
    if production is not None and str(entry["model_version"]) == str(production):
        return IN_PRODUCTION
    if entry.get("promoted") is True:
        return PROMOTED
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


def models_frame(history: Sequence[dict[str, Any]], production: str | None) -> pd.DataFrame:
    """One row per model version, newest first, with its metrics, verdict and reasons."""
    rows = []
    for entry in sorted(history, key=lambda e: _version_key(e["model_version"]), reverse=True):
        metrics = entry.get("metrics") or {}
        rows.append(
            {
                "version": f"v{entry['model_version']}",
                "verdict": verdict(entry, production),
                "trained at": pd.to_datetime(entry.get("trained_at"), utc=True),
                "batch": entry.get("batch_number"),
                "MAE": metrics.get("mae"),
                "baseline MAE": metrics.get("baseline_mae"),
                "RMSE": metrics.get("rmse"),
                "R²": metrics.get("r2"),
                "MAPE": metrics.get("mape"),
                "why trained": joined(entry.get("training_reasons")),
                "why promoted or rejected": joined(entry.get("promotion_reasons")),
                "trained on batches": ", ".join(
                    str(b) for b in entry.get("training_batch_ids") or []
                ),
            }
        )
    columns = [
        "version", "verdict", "trained at", "batch", "MAE", "baseline MAE", "RMSE", "R²",
        "MAPE", "why trained", "why promoted or rejected", "trained on batches",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def mae_long(history: Sequence[dict[str, Any]], production: str | None) -> pd.DataFrame:
    """MAE and baseline MAE per version, one row per (version, series): the chart's data."""
    rows = []
    for entry in sorted(history, key=lambda e: _version_key(e["model_version"])):
        metrics = entry.get("metrics") or {}
        common = {
            "version": f"v{entry['model_version']}",
            "verdict": verdict(entry, production),
            "why": joined(entry.get("promotion_reasons")),
        }
        for series, key in (("model MAE", "mae"), ("baseline MAE (state medians)", "baseline_mae")):
            value = metrics.get(key)
            if isinstance(value, int | float):
                rows.append({**common, "series": series, "dollars": float(value)})
    return pd.DataFrame(rows, columns=["version", "verdict", "why", "series", "dollars"])


def mae_chart(history: Sequence[dict[str, Any]], production: str | None) -> alt.LayerChart:
    """MAE (coloured by verdict) and the baseline's MAE over versions; production ringed."""
    data = mae_long(history, production)
    order = list(dict.fromkeys(data["version"])) if not data.empty else []
    top = float(data["dollars"].max()) * 1.12 if not data.empty else 1.0
    x = alt.X("version:N", sort=order, title="model version", axis=alt.Axis(labelAngle=0))
    y = alt.Y(
        "dollars:Q",
        title="MAE on the holdout ($)",
        axis=alt.Axis(format="$,.0f", tickCount=6),
        scale=alt.Scale(domain=[0, top], nice=False),
    )
    base = alt.Chart(data)
    lines = base.mark_line(strokeWidth=2).encode(
        x=x,
        y=y,
        strokeDash=alt.StrokeDash(
            "series:N",
            title=None,
            scale=alt.Scale(
                domain=["model MAE", "baseline MAE (state medians)"], range=[[1, 0], [6, 4]]
            ),
            legend=alt.Legend(orient="top", labelLimit=0),
        ),
        color=alt.value("#555555"),
    )
    tooltip = [
        alt.Tooltip("version:N"),
        alt.Tooltip("series:N", title="what"),
        alt.Tooltip("dollars:Q", title="MAE", format="$,.0f"),
        alt.Tooltip("verdict:N"),
        alt.Tooltip("why:N", title="why"),
    ]
    points = (
        base.transform_filter(alt.datum.series == "model MAE")
        .mark_circle(size=140, opacity=1)
        .encode(
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
    )
    ring = (
        base.transform_filter(
            (alt.datum.series == "model MAE") & (alt.datum.verdict == IN_PRODUCTION)
        )
        .mark_point(size=520, strokeWidth=2.5, color=VERDICT_COLOURS[IN_PRODUCTION])
        .encode(x=x, y=y)
    )
    label = (
        base.transform_filter(
            (alt.datum.series == "model MAE") & (alt.datum.verdict == IN_PRODUCTION)
        )
        .mark_text(dy=-22, fontWeight="bold", color=VERDICT_COLOURS[IN_PRODUCTION])
        .encode(x=x, y=y, text=alt.value("production"))
    )
    baseline_points = (
        base.transform_filter(alt.datum.series != "model MAE")
        .mark_point(size=50, color="#555555")
        .encode(x=x, y=y, tooltip=tooltip)
    )
    return alt.layer(lines, baseline_points, points, ring, label).properties(height=320)


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
                "promoted": "—" if promoted is None else ("yes" if promoted else "no"),
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
