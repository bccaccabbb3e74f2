"""Predict: a house's price from the production model, and a SHAP picture of why."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from tasks.schema import STATUSES
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
    PREV_SOLD_DEFAULT,
    PREV_SOLD_MIN,
    STATES,
    STATUS_LABELS,
    HouseInputs,
)
from ui.settings import UiSettings

PLOT_CONFIG = {"displayModeBar": False}


def house_form() -> HouseInputs:
    """The inputs, in a form: the page predicts on load with the defaults, then on submit."""
    defaults = HouseInputs()
    with st.form("house", border=True):
        st.markdown("**The house**")
        status = st.selectbox(
            "Status", STATUSES, format_func=lambda s: STATUS_LABELS.get(s, s), key="status"
        )
        state = st.selectbox("State", STATES, index=STATES.index(defaults.state), key="state")
        left, right = st.columns([3, 2])
        city = left.text_input("City", defaults.city, key="city", max_chars=128)
        zip_code = right.text_input("Zip code", defaults.zip_code, key="zip_code", max_chars=5)
        left, right = st.columns(2)
        bed = left.number_input("Bedrooms", BED[0], BED[1], BED[2], BED[3], key="bed")
        bath = right.number_input("Bathrooms", BATH[0], BATH[1], BATH[2], BATH[3], key="bath")
        house_size = st.number_input("Living area (sq ft)", *HOUSE_SIZE, key="house_size")
        acre_lot = st.number_input("Lot (acres)", *ACRE_LOT, format="%.2f", key="acre_lot")
        sold_before = st.checkbox("Sold before", value=True, key="sold_before")
        prev_sold = st.date_input(
            "Last sold on",
            PREV_SOLD_DEFAULT,
            min_value=PREV_SOLD_MIN,
            max_value=dt.date.today(),
            key="prev_sold_date",
            help="ignored unless 'Sold before' is ticked",
        )
        st.form_submit_button("Estimate the price", type="primary", width="stretch")
    return HouseInputs(
        status=str(status),
        state=str(state),
        city=city,
        zip_code=zip_code,
        bed=int(bed),
        bath=int(bath),
        house_size=float(house_size),
        acre_lot=float(acre_lot),
        prev_sold_date=prev_sold if sold_before and isinstance(prev_sold, dt.date) else None,
    )


def show_price_only(settings: UiSettings, inputs: HouseInputs, why: SourceError) -> None:
    """/explain failed for another reason than serving being down: the price alone."""
    try:
        price, version = page_kit.serving_of(settings).predict(inputs.record())
    except SourceError as error:
        page_kit.show_problem(error)
        return
    st.metric("Estimated price", money(price))
    st.caption(f"model {settings.model_name} **v{version}**")
    st.warning(f"No explanation this time: {why.problem}. {why.fix}.", icon=":material/warning:")


def main() -> None:
    settings = page_kit.get_settings()
    st.title("What is this house worth?")
    st.caption(
        "The production model's estimate, and what moves it: each feature pushes the price up "
        "(red) or down (blue) from the typical price the model starts from."
    )
    form_column, result_column = st.columns([1, 2.4], gap="large")
    with form_column:
        inputs = house_form()
    with result_column:
        problems = inputs.problems()
        if problems:
            for field, rule in problems.items():
                st.error(f"**{field}**: {rule}", icon=":material/edit:")
            return
        try:
            explanation = page_kit.serving_of(settings).explain(inputs.record())
        except InputRejectedError as error:
            for field, rule in error.fields.items():
                st.error(f"**{field}**: {rule}", icon=":material/edit:")
            return
        except (ServingDownError, NoModelError) as error:
            page_kit.show_problem(error)
            return
        except SourceError as error:
            show_price_only(settings, inputs, error)
            return
        rows = contributions_of(explanation.contributions, explanation.features)
        price_column, story_column = st.columns([1, 2])
        price_column.metric("Estimated price", money(explanation.price))
        price_column.caption(f"model {explanation.model_name} **v{explanation.model_version}**")
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


main()
