"""What the pages share: settings, cached reads, and how a failing source is shown.

Reads are cached for ``UI_CACHE_SECONDS`` (the time bucket is part of the cache key), so a
page is fast on every rerun and still fresh within seconds; failures are never cached.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from ui import sources
from ui.errors import SourceError
from ui.serving_client import ServingClient
from ui.settings import UiSettings, get_settings

__all__ = ["get_settings", "show_problem"]


def show_problem(error: SourceError) -> None:
    """Which source failed, and what to do: one red box, never a trace."""
    st.error(f"**{error.problem}**\n\n{error.fix}", icon=":material/error:")


def _bucket(settings: UiSettings) -> int:
    seconds = settings.ui_cache_seconds
    return int(time.time() // seconds) if seconds > 0 else time.time_ns()


@st.cache_resource(show_spinner=False)
def serving(base_url: str, timeout_seconds: float) -> ServingClient:
    return ServingClient(base_url, timeout_seconds)


def serving_of(settings: UiSettings) -> ServingClient:
    return serving(settings.ui_serving_url, settings.ui_serving_timeout_seconds)


@st.cache_data(show_spinner=False, max_entries=16)
def _batches(ledger_url: str, bucket: int) -> list[dict[str, Any]]:
    return sources.read_batches(ledger_url)


@st.cache_data(show_spinner=False, max_entries=16)
def _history(ledger_url: str, model_name: str, bucket: int) -> list[dict[str, Any]]:
    return sources.read_model_history(ledger_url, model_name)


@st.cache_data(show_spinner=False, max_entries=16)
def _pending_live_drift(ledger_url: str, model_name: str, bucket: int) -> list[str]:
    return sources.read_pending_live_drift(ledger_url, model_name)


@st.cache_data(show_spinner=False, max_entries=16)
def _leaderboard(ledger_url: str, model_name: str, bucket: int) -> dict[str, Any]:
    return sources.read_leaderboard(ledger_url, model_name)


@st.cache_data(show_spinner=False, max_entries=16)
def _monitoring(ledger_url: str, model_name: str, bucket: int) -> dict[str, Any]:
    return sources.read_monitoring(ledger_url, model_name)


@st.cache_data(show_spinner=False, max_entries=16)
def _production(tracking_uri: str, model_name: str, bucket: int) -> str | None:
    return sources.production_version(tracking_uri, model_name)


@st.cache_data(show_spinner=False, max_entries=16)
def _served_model(base_url: str, timeout_seconds: float, bucket: int) -> dict[str, Any]:
    return serving(base_url, timeout_seconds).model()


@st.cache_data(show_spinner=False, max_entries=8)
def _report(storage_url: str, key: str, _settings: UiSettings) -> bytes:
    return sources.read_report(_settings, key)


def batches(settings: UiSettings) -> list[dict[str, Any]]:
    return _batches(settings.ledger_url, _bucket(settings))


def model_history(settings: UiSettings) -> list[dict[str, Any]]:
    return _history(settings.ledger_url, settings.model_name, _bucket(settings))


def pending_live_drift(settings: UiSettings) -> list[str]:
    return _pending_live_drift(settings.ledger_url, settings.model_name, _bucket(settings))


def leaderboard(settings: UiSettings) -> dict[str, Any]:
    return _leaderboard(settings.ledger_url, settings.model_name, _bucket(settings))


def monitoring(settings: UiSettings) -> dict[str, Any]:
    return _monitoring(settings.ledger_url, settings.model_name, _bucket(settings))


def production_version(settings: UiSettings) -> str | None:
    return _production(settings.mlflow_tracking_uri, settings.model_name, _bucket(settings))


def served_model(settings: UiSettings) -> dict[str, Any]:
    return _served_model(
        settings.ui_serving_url, settings.ui_serving_timeout_seconds, _bucket(settings)
    )


def report(settings: UiSettings, key: str) -> bytes:
    return _report(settings.storage_url, key, settings)


def refresh_button() -> None:
    """A button that forgets every cached read, for a person who just ran the pipeline."""
    if st.button("Refresh", icon=":material/refresh:", help="read the ledger and registry again"):
        st.cache_data.clear()


#: the height of a report opened in a page (it scrolls inside)
REPORT_HEIGHT = 720


def show_report(settings: UiSettings, title: str, key: str) -> None:
    """A report from the lake, full width, with a download button; a red box if it is missing."""
    try:
        content = report(settings, key)
    except SourceError as error:
        show_problem(error)
        return
    heading, download = st.columns([4, 1], vertical_alignment="bottom")
    heading.markdown(f"##### {title}")
    download.download_button(
        "Download",
        content,
        file_name="-".join(key.split("/")[-2:]).replace("=", "-"),
        mime="text/html",
        icon=":material/download:",
        on_click="ignore",
        key=f"download-{key}",
        width="stretch",
    )
    st.iframe(content.decode("utf-8", errors="replace"), height=REPORT_HEIGHT)
