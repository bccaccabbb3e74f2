"""A price's explanation as pictures: a SHAP force plot and a waterfall, labelled in dollars.

Serving's ``/explain`` gives SHAP contributions in log1p(price) space: ``base_value +
sum(contributions) = log_price``. Both figures are drawn in that space, where the
contributions add up exactly, and the axis is labelled in dollars (a tick at $500k sits at
log1p(500,000)). A contribution ``c`` multiplies (1 + price) by ``exp(c)``: that factor, as a
percentage, is what each bar says ("+25%"), since it does not depend on the order of features.

Everything here is pure (numbers in, figures out), so it is tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from ui.record_form import feature_label

RAISES = "#ff0051"  # SHAP's own colours: red pushes the price up
LOWERS = "#008bfb"  # blue pushes it down
NEUTRAL = "#7f7f7f"
INK = "#31333f"  # Streamlit's text colour
MANTISSAS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


def money(value: float) -> str:
    """``$412,300``."""
    return f"${value:,.0f}"


def short_money(value: float) -> str:
    """``$412k``, ``$1.25M``, ``$950``: for axis ticks and tight labels."""
    size = abs(value)
    if size >= 1e9:
        return f"${value / 1e9:.3g}B"
    if size >= 1e6:
        return f"${value / 1e6:.3g}M"
    if size >= 1e3:
        return f"${value / 1e3:.3g}k"
    return f"${value:.0f}"


def to_dollars(log_price: float) -> float:
    return math.expm1(log_price)


def percent_effect(contribution: float) -> str:
    """The change a contribution makes to (1 + price): ``+25%``, ``-40%``, ``+0.3%``."""
    change = math.expm1(contribution) * 100
    digits = 1 if abs(change) < 10 else 0
    return f"{change:+.{digits}f}%".replace("-", "\u2212")


def _nice_step(raw: float) -> float:
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)


def dollar_ticks(low: float, high: float, target: int = 6) -> tuple[list[float], list[str]]:
    """Tick positions in log1p space between ``low`` and ``high``, labelled in dollars.

    Over a wide range (the high end more than 4 times the low one) round amounts of each
    order of magnitude (1, 2, 5 ... times a power of ten); over a narrow one, evenly spaced round
    amounts. About ``target`` ticks, at least two.
    """
    if high < low:
        low, high = high, low
    lo_dollars, hi_dollars = max(to_dollars(low), 1.0), max(to_dollars(high), 1.0)
    chosen: list[float] = []
    if hi_dollars > 4 * lo_dollars:
        exponents = range(math.floor(math.log10(lo_dollars)), math.ceil(math.log10(hi_dollars)) + 1)
        inside = [m * 10.0**e for e in exponents for m in MANTISSAS]
        inside = [v for v in inside if lo_dollars <= v <= hi_dollars]
        for keep in ((1.0,), (1.0, 5.0), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), MANTISSAS):
            chosen = [v for v in inside if round(v / 10 ** math.floor(math.log10(v)), 6) in keep]
            if len(chosen) >= min(target - 2, len(inside)):
                break
        if len(chosen) > target + 2:
            chosen = chosen[:: math.ceil(len(chosen) / target)]
    if len(chosen) < 2:
        step = _nice_step(max(hi_dollars - lo_dollars, 1.0) / target)
        first = math.ceil(lo_dollars / step) * step
        chosen = [first + i * step for i in range(int((hi_dollars - first) // step) + 1)]
    return [math.log1p(v) for v in chosen], [short_money(v) for v in chosen]


@dataclass(frozen=True)
class Contribution:
    """One feature's share of the explanation."""

    feature: str
    value: Any
    contribution: float  # in log1p(price)

    @property
    def label(self) -> str:
        return feature_label(self.feature, self.value)

    @property
    def effect(self) -> str:
        return percent_effect(self.contribution)

    @property
    def raises(self) -> bool:
        return self.contribution > 0


def contributions_of(
    contributions: dict[str, float], features: dict[str, Any]
) -> list[Contribution]:
    """Every feature's contribution, the largest (in absolute value) first."""
    rows = [Contribution(name, features.get(name), value) for name, value in contributions.items()]
    return sorted(rows, key=lambda row: (-abs(row.contribution), row.feature))


def summary_sentence(rows: list[Contribution]) -> str:
    """``What raises it most: Size = 2,400 sq ft (+25%). What lowers it most: ...``"""
    up = next((r for r in rows if r.contribution > 0), None)
    down = next((r for r in rows if r.contribution < 0), None)
    parts = []
    if up is not None:
        parts.append(f"Raises it most: **{up.label}** ({up.effect}).")
    if down is not None:
        parts.append(f"Lowers it most: **{down.label}** ({down.effect}).")
    return " ".join(parts) or "No feature moves this price away from the typical price."


@dataclass(frozen=True)
class Segment:
    """One arrow of the force plot: ``start`` to ``end`` in log1p(price) space."""

    row: Contribution
    start: float
    end: float


def force_segments(base_value: float, rows: list[Contribution]) -> list[Segment]:
    """Arrows as SHAP's force plot lays them out, meeting at the prediction.

    Red arrows (features that raise the price) end at the prediction, the largest next to it;
    blue arrows start there, the largest next to it. Their lengths add up to the contributions,
    so the red block starts at ``base - sum|blue|`` and the blue block ends at ``base + sum(red)``.
    """
    prediction = base_value + sum(r.contribution for r in rows)
    segments: list[Segment] = []
    edge = prediction
    for row in sorted((r for r in rows if r.contribution > 0), key=lambda r: -r.contribution):
        segments.append(Segment(row, edge - row.contribution, edge))
        edge -= row.contribution
    edge = prediction
    for row in sorted((r for r in rows if r.contribution < 0), key=lambda r: r.contribution):
        segments.append(Segment(row, edge, edge - row.contribution))
        edge -= row.contribution
    return segments


def _chevron(start: float, end: float, points_right: bool, tip: float) -> tuple[list, list]:
    tip = min(tip, (end - start) / 2)
    half = 0.35
    if points_right:
        xs = [start, end - tip, end, end - tip, start, start + tip, start]
    else:
        xs = [end, start + tip, start, start + tip, end, end - tip, end]
    ys = [-half, -half, 0.0, half, half, 0.0, -half]
    return xs, ys


def force_figure(
    base_value: float, contributions: dict[str, float], features: dict[str, Any]
) -> go.Figure:
    """SHAP's force plot of one prediction, in log1p(price) space with a dollar axis."""
    rows = [r for r in contributions_of(contributions, features) if r.contribution != 0]
    segments = force_segments(base_value, rows)
    prediction = base_value + sum(r.contribution for r in rows)
    low = min([base_value, prediction, *(s.start for s in segments)])
    high = max([base_value, prediction, *(s.end for s in segments)])
    span = max(high - low, 0.05)
    low, high = low - span * 0.06, high + span * 0.06
    tip = span * 0.012

    figure = go.Figure()
    for colour, name in ((RAISES, "raises the price"), (LOWERS, "lowers it")):
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                marker={"color": colour, "size": 12, "symbol": "square"},
            )
        )
    labelled: list[tuple[float, Segment]] = []
    for segment in segments:
        xs, ys = _chevron(segment.start, segment.end, segment.row.raises, tip)
        colour = RAISES if segment.row.raises else LOWERS
        hover = f"{segment.row.label}<br>{segment.row.effect} on the price"
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                fill="toself",
                mode="lines",
                fillcolor=colour,
                line={"color": "white", "width": 1.5},
                hoverinfo="text",
                hovertext=hover,
                hoveron="fills",
                showlegend=False,
                name=segment.row.feature,
            )
        )
        if segment.end - segment.start >= span * 0.07:
            labelled.append(((segment.start + segment.end) / 2, segment))
    for index, (middle, segment) in enumerate(sorted(labelled, key=lambda item: item[0])):
        figure.add_annotation(
            x=middle,
            y=-0.5 - 0.32 * (index % 2),
            yanchor="top",
            showarrow=False,
            text=f"{segment.row.label}<br><b>{segment.row.effect}</b>",
            font={"size": 11, "color": RAISES if segment.row.raises else LOWERS},
        )
    figure.add_shape(
        type="line",
        x0=base_value,
        x1=base_value,
        y0=-0.55,
        y1=0.55,
        line={"color": NEUTRAL, "dash": "dot", "width": 1.5},
    )
    figure.add_annotation(
        x=base_value,
        y=0.62,
        yanchor="bottom",
        showarrow=False,
        text=f"typical price<br>{money(to_dollars(base_value))}",
        font={"size": 11, "color": NEUTRAL},
    )
    figure.add_annotation(
        x=prediction,
        y=0.9,
        yanchor="bottom",
        showarrow=True,
        ay=-1,
        ax=0,
        text=f"<b>this house: {money(to_dollars(prediction))}</b>",
        font={"size": 14, "color": INK},
    )
    tickvals, ticktext = dollar_ticks(low, high)
    figure.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": 1.18, "x": 0, "font": {"size": 12}},
        hovermode="closest",
    )
    figure.update_xaxes(
        range=[low, high],
        tickvals=tickvals,
        ticktext=ticktext,
        showgrid=True,
        gridcolor="#eeeeee",
        zeroline=False,
        fixedrange=True,
    )
    figure.update_yaxes(range=[-1.45, 1.25], visible=False, fixedrange=True)
    return figure


@dataclass(frozen=True)
class Step:
    """One bar of the waterfall: the path from the typical price to this house's price."""

    label: str
    contribution: float
    start: float
    end: float
    hover: str


def waterfall_steps(
    base_value: float, rows: list[Contribution], max_features: int = 8
) -> list[Step]:
    """Bars from the bottom up: the small features together, then each large one.

    Like ``shap.plots.waterfall``: the largest contribution is the last (top) step, which ends
    at the prediction.
    """
    cut = max_features if len(rows) > max_features + 1 else len(rows)  # never "1 other"
    shown, rest = rows[:cut], rows[cut:]
    steps: list[Step] = []
    edge = base_value
    if rest:
        total = sum(r.contribution for r in rest)
        label = f"{len(rest)} other feature{'s' if len(rest) > 1 else ''}"
        hover = ", ".join(r.label for r in rest)
        steps.append(Step(label, total, edge, edge + total, hover))
        edge += total
    for row in reversed(shown):
        hover = f"{row.label}: {row.effect} on the price"
        steps.append(Step(row.label, row.contribution, edge, edge + row.contribution, hover))
        edge += row.contribution
    return steps


def waterfall_figure(
    base_value: float,
    contributions: dict[str, float],
    features: dict[str, Any],
    max_features: int = 8,
) -> go.Figure:
    """SHAP's waterfall of one prediction, labelled in dollars and percentages."""
    rows = contributions_of(contributions, features)
    steps = waterfall_steps(base_value, rows, max_features)
    prediction = steps[-1].end if steps else base_value
    labels = [s.label for s in steps]
    figure = go.Figure(
        go.Bar(
            orientation="h",
            y=labels,
            x=[abs(s.contribution) for s in steps],
            base=[min(s.start, s.end) for s in steps],
            marker={"color": [RAISES if s.contribution > 0 else LOWERS for s in steps]},
            text=[percent_effect(s.contribution) for s in steps],
            textposition="outside",
            cliponaxis=False,
            hovertext=[
                f"{s.hover}<br>{money(to_dollars(s.start))} \u2192 {money(to_dollars(s.end))}"
                for s in steps
            ],
            hoverinfo="text",
        )
    )
    points = [base_value, prediction, *(s.start for s in steps), *(s.end for s in steps)]
    low, high = min(points), max(points)
    span = max(high - low, 0.05)
    low, high = low - span * 0.12, high + span * 0.12
    for x, text, y in (
        (base_value, f"typical {short_money(to_dollars(base_value))}", -0.06),
        (prediction, f"<b>this house {short_money(to_dollars(prediction))}</b>", 1.02),
    ):
        figure.add_vline(x=x, line={"color": NEUTRAL, "dash": "dot", "width": 1})
        figure.add_annotation(
            x=x,
            y=y,
            yref="paper",
            showarrow=False,
            text=text,
            yanchor="top" if y < 0 else "bottom",
            font={"size": 12, "color": INK},
        )
    tickvals, ticktext = dollar_ticks(low, high, target=5)
    figure.update_layout(
        height=max(260, 46 * len(steps) + 90),
        margin={"l": 10, "r": 30, "t": 30, "b": 50},
        plot_bgcolor="white",
        showlegend=False,
        bargap=0.25,
    )
    figure.update_xaxes(
        range=[low, high],
        tickvals=tickvals,
        ticktext=ticktext,
        showgrid=True,
        gridcolor="#eeeeee",
        zeroline=False,
        fixedrange=True,
    )
    figure.update_yaxes(
        categoryorder="array", categoryarray=labels, fixedrange=True, automargin=True
    )
    return figure


def contributions_table(rows: list[Contribution]) -> list[dict[str, Any]]:
    """Rows for a small table: feature, its value, its effect on the price."""
    return [
        {"feature": r.label, "effect": r.effect, "log-price contribution": round(r.contribution, 4)}
        for r in rows
    ]
