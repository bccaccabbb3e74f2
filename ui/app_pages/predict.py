"""Predict: a house's price from the production model, and a SHAP picture of why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from tasks.core.wire import STATUSES
from ui import page_kit
from ui.errors import InputRejectedError, NoModelError, ServingDownError, SourceError
from ui.explain_plots import (
    contributions_of,
    contributions_table,
    force_figure,
    money,
    summary_sentence,
    to_dollars,
    waterfall_figure,
)
from ui.record_form import (
    ACRE_LOT,
    BATH,
    BED,
    HOUSE_SIZE,
    INPUT_LABELS,
    PREV_SOLD_DEFAULT,
    PREV_SOLD_MIN,
    STATES,
    STATUS_LABELS,
    ZIP_MAX_CHARS,
    HouseInputs,
    price_is_current,
    warning_sentence,
)
from ui.serving_client import Explanation
from ui.settings import UiSettings

PLOT_CONFIG = {"displayModeBar": False}
#: session keys: the last price and the exact record it was computed for
PRICED = "predict_priced"
ESTIMATED_ONCE = "predict_estimated_once"


def number_field(where: Any, field: str, default: float, step: float, **options: Any) -> Any:
    """A number input that neither clamps nor refuses silently, and may be left empty.

    No min/max on the widget: the browser would keep the old value and say why only on hover.
    The value is kept as typed and :meth:`HouseInputs.problems` names what is wrong with it.
    """
    if field not in st.session_state:
        st.session_state[field] = default
    return where.number_input(INPUT_LABELS[field], value=None, step=step, key=field, **options)


def house_form() -> tuple[HouseInputs, bool]:
    """The inputs, each with its problem right below it, and the problems above the button.

    Not an ``st.form``: every change reruns the page, so a price shown is always checked
    against the inputs on screen. Returns the inputs and whether Estimate was pressed.
    """
    defaults = HouseInputs()
    notes: dict[str, Any] = {}
    with st.container(border=True):
        st.markdown("**The house**")
        status = st.selectbox(
            INPUT_LABELS["status"],
            STATUSES,
            format_func=lambda s: STATUS_LABELS.get(s, s),
            key="status",
        )
        state = st.selectbox(
            INPUT_LABELS["state"], STATES, index=STATES.index(defaults.state), key="state"
        )
        left, right = st.columns([3, 2])
        city = left.text_input(INPUT_LABELS["city"], defaults.city, key="city", max_chars=128)
        zip_code = right.text_input(
            INPUT_LABELS["zip_code"],
            defaults.zip_code,
            key="zip_code",
            max_chars=ZIP_MAX_CHARS,
            help="five digits, or empty",
        )
        notes["zip_code"] = st.empty()  # full width below the row: readable, not wrapped
        left, right = st.columns(2)
        bed = number_field(left, "bed", BED[2], BED[3], help=f"{BED[0]} to {BED[1]}, or empty")
        bath = number_field(
            right, "bath", BATH[2], BATH[3], help=f"{BATH[0]} to {BATH[1]}, or empty"
        )
        notes["bed"], notes["bath"] = st.empty(), st.empty()
        house_size = number_field(
            st,
            "house_size",
            HOUSE_SIZE[2],
            HOUSE_SIZE[3],
            format="%.0f",
            help=f"{HOUSE_SIZE[0]:,.0f} to {HOUSE_SIZE[1]:,.0f} sq ft, or empty",
        )
        notes["house_size"] = st.empty()
        acre_lot = number_field(
            st,
            "acre_lot",
            ACRE_LOT[2],
            ACRE_LOT[3],
            format="%.2f",
            help=f"{ACRE_LOT[0]:,.0f} to {ACRE_LOT[1]:,.0f} acres, or empty",
        )
        notes["acre_lot"] = st.empty()
        sold_before = st.checkbox("Sold before", value=True, key="sold_before")
        prev_sold = st.date_input(
            INPUT_LABELS["prev_sold_date"],
            PREV_SOLD_DEFAULT,
            min_value=PREV_SOLD_MIN,
            max_value=dt.date.today(),
            key="prev_sold_date",
            help="ignored unless 'Sold before' is ticked",
        )
        notes["prev_sold_date"] = st.empty()
        inputs = HouseInputs(
            status=str(status),
            state=str(state),
            city=city or "",
            zip_code=zip_code or "",
            bed=None if bed is None else int(bed),
            bath=None if bath is None else int(bath),
            house_size=None if house_size is None else float(house_size),
            acre_lot=None if acre_lot is None else float(acre_lot),
            prev_sold_date=prev_sold if sold_before and isinstance(prev_sold, dt.date) else None,
        )
        problems = inputs.problems()
        for field, message in problems.items():
            (notes.get(field) or st).error(message, icon=":material/edit:")
        if problems:
            listed = "\n".join(f"- {message}" for message in problems.values())
            st.error(f"**No price until these are corrected:**\n{listed}", icon=":material/block:")
        clicked = st.button("Estimate the price", type="primary", width="stretch", key="estimate")
    return inputs, clicked


@dataclass(frozen=True)
class Priced:
    """A price and the exact record it was computed for (kept in the session)."""

    record: dict[str, Any]
    price: float
    version: str
    explanation: Explanation | None = None
    #: why there is no explanation (the price came from /predict)
    no_explanation: str = ""


def estimate(settings: UiSettings, inputs: HouseInputs) -> Priced | None:
    """Ask serving (``/explain``, else ``/predict`` for the price alone); problems shown here."""
    record = inputs.record()
    client = page_kit.serving_of(settings)
    try:
        explanation = client.explain(record)
    except InputRejectedError as error:
        for field, rule in error.fields.items():
            label = INPUT_LABELS.get(field, field)
            st.error(f"**{label}** refused by serving: {rule}", icon=":material/edit:")
        return None
    except (ServingDownError, NoModelError) as error:
        page_kit.show_problem(error)
        return None
    except SourceError as why:
        try:
            price, version = client.predict(record)
        except SourceError as error:
            page_kit.show_problem(error)
            return None
        return Priced(record, price, version, no_explanation=f"{why.problem}. {why.fix}.")
    return Priced(record, explanation.price, explanation.model_version, explanation)


def show_price(settings: UiSettings, priced: Priced, inputs: HouseInputs) -> None:
    """The price, what the model filled in, serving's warnings beside it, then the plots."""
    explanation = priced.explanation
    price_column, story_column = st.columns([1, 2])
    price_column.metric("Estimated price", money(priced.price))
    name = explanation.model_name if explanation else settings.model_name
    price_column.caption(f"model {name} **v{priced.version}**")
    empty = inputs.empty_fields()
    if empty:
        price_column.info(f"The model filled these in: {', '.join(empty)}", icon=":material/info:")
    for warning in explanation.warnings if explanation else ():
        story_column.warning(warning_sentence(warning), icon=":material/warning:")
    if explanation is None:
        story_column.warning(
            f"No explanation this time: {priced.no_explanation}", icon=":material/warning:"
        )
        return
    rows = contributions_of(explanation.contributions, explanation.features)
    story_column.markdown(summary_sentence(rows))
    story_column.caption(
        "The model starts from a typical price, "
        f"{money(to_dollars(explanation.base_value))} (its average in log-price space), "
        "and each feature multiplies it by its effect."
    )
    st.markdown("##### Why this price")
    st.plotly_chart(
        force_figure(explanation.base_value, explanation.contributions, explanation.features),
        config=PLOT_CONFIG,
        key="force_plot",
    )
    waterfall_column, table_column = st.columns([3, 2])
    with waterfall_column:
        st.markdown("##### Step by step")
        st.plotly_chart(
            waterfall_figure(
                explanation.base_value, explanation.contributions, explanation.features
            ),
            config=PLOT_CONFIG,
            key="waterfall_plot",
        )
    with table_column:
        st.markdown("##### Every feature")
        st.dataframe(
            pd.DataFrame(contributions_table(rows)),
            hide_index=True,
            column_config={
                "feature": st.column_config.TextColumn("feature"),
                "effect": st.column_config.TextColumn("effect", width="small"),
                "log-price contribution": st.column_config.NumberColumn(
                    "SHAP",
                    width="small",
                    help="in log1p(price); they add up to the log price",
                    format="%.3f",
                ),
            },
        )


def main() -> None:
    settings = page_kit.get_settings()
    st.title("What is this house worth?")
    st.caption(
        "The production model's estimate, and what moves it: each feature pushes the price up "
        "(red) or down (blue) from the typical price the model starts from."
    )
    form_column, result_column = st.columns([1, 2.4], gap="large")
    with form_column:
        inputs, clicked = house_form()
    record = inputs.record()
    with result_column:
        if inputs.problems():
            st.session_state.pop(PRICED, None)  # a price for other inputs is never shown
            st.info(
                "No price: correct the fields marked in red on the left, then press "
                "**Estimate the price**.",
                icon=":material/edit:",
            )
            return
        estimated_now = clicked or not st.session_state.get(ESTIMATED_ONCE)
        if estimated_now:  # the page prices the defaults on load, then on Estimate
            st.session_state[ESTIMATED_ONCE] = True
            st.session_state.pop(PRICED, None)
            priced = estimate(settings, inputs)
            if priced is None:
                return
            st.session_state[PRICED] = priced
        priced = st.session_state.get(PRICED)
        if priced is None or not price_is_current(priced.record, record):
            st.session_state.pop(PRICED, None)
            st.info(
                "The inputs changed since the last estimate: press **Estimate the price** for "
                "the price of this house.",
                icon=":material/refresh:",
            )
            return
        show_price(settings, priced, inputs)


main()
