"""Where the Models and Pipeline pages read from: the ledger, the lake, the MLflow registry.

Each function returns plain data or raises :class:`ui.errors.SourceError` saying which source
failed and what to do; nothing here imports Streamlit (the pages cache the results).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from tasks.core import leaderboard, monitoring_reads, story
from tasks.core.ledger import Ledger, MonitorWindow
from tasks.core.monitor_ledger import recent_windows
from ui.errors import SourceError, safe_url
from ui.settings import UiSettings

#: seconds a PostgreSQL ledger or an MLflow server may take to accept a connection
CONNECT_TIMEOUT_SECONDS = 3
LEDGER_FIX = "start it (PostgreSQL) or point LEDGER_URL at the pipeline's ledger"


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _with_connect_timeout(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
        return parsed.render_as_string(hide_password=False)
    return url


@lru_cache(maxsize=8)
def _ledger(url: str) -> Ledger:
    return Ledger.open(_with_connect_timeout(url), upgrade=False)


def open_ledger(url: str) -> Ledger:
    """The ledger at ``url``, read-only in spirit: the UI never creates or migrates it."""
    try:
        path = _sqlite_path(url)
    except ArgumentError as exc:
        raise SourceError(
            "ledger", f"LEDGER_URL {url!r} is not a database URL", LEDGER_FIX
        ) from exc
    if path is not None and not path.is_file():
        raise SourceError(
            "ledger",
            f"there is no ledger at {path} yet",
            "run the pipeline once (`make demo`), or point LEDGER_URL at the pipeline's ledger",
        )
    try:
        return _ledger(url)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise SourceError(
            "ledger", f"LEDGER_URL {safe_url(url)} cannot be opened: {exc}", LEDGER_FIX
        ) from exc


def _ledger_failure(url: str, exc: Exception) -> SourceError:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else ""
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return SourceError(
            "ledger",
            f"the ledger at {safe_url(url)} has no pipeline tables yet ({text})",
            "run the pipeline once (`make demo`): its first task creates them",
        )
    return SourceError(
        "ledger", f"the ledger at {safe_url(url)} is not answering: {text[:200]}", LEDGER_FIX
    )


def read_batches(url: str) -> list[dict[str, Any]]:
    """Every batch's story (``tasks.core.story.batch_summaries``), oldest first."""
    ledger = open_ledger(url)
    try:
        return story.batch_summaries(ledger)
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _ledger_failure(url, exc) from exc


def read_model_history(url: str, model_name: str) -> list[dict[str, Any]]:
    """Every trained version of ``model_name`` (``tasks.core.story.model_history``), oldest first."""
    ledger = open_ledger(url)
    try:
        return story.model_history(ledger, model_name)
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _ledger_failure(url, exc) from exc


def read_pending_live_drift(url: str, model_name: str) -> list[str]:
    """Live drift no batch took yet (``tasks.core.story.pending_live_drift``): 0 or 1 line."""
    ledger = open_ledger(url)
    try:
        return story.pending_live_drift(ledger, model_name)
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _ledger_failure(url, exc) from exc


def read_leaderboard(url: str, model_name: str) -> dict[str, Any]:
    """The common holdout and every version's score on it (``tasks.core.leaderboard.board``)."""
    ledger = open_ledger(url)
    try:
        return leaderboard.board(ledger, model_name)
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _ledger_failure(url, exc) from exc


def window_entry(window: MonitorWindow) -> dict[str, Any]:
    """A monitor window as a plain dict (what the Monitoring page shows of it)."""
    return {
        "id": window.id,
        "window_start": window.window_start,
        "window_end": window.window_end,
        "rows": window.rows,
        "consumed": window.consumed,
        "model_version": window.model_version,
        "decision": window.decision,
        "reasons": list(window.reasons or []),
        "drift_share": window.drift_share,
        "feature_scores": dict(window.feature_scores or {}),
        "report_html_key": window.report_html_key,
        "acted_on_batch_id": window.acted_on_batch_id,
    }


def read_monitoring(url: str, model_name: str) -> dict[str, Any]:
    """Live traffic of ``model_name``: its monitor windows, requests per hour, shadow agreement
    (each aggregated by the database, :mod:`tasks.core.monitoring_reads`)."""
    ledger = open_ledger(url)
    try:
        return {
            "windows": [window_entry(w) for w in recent_windows(ledger, model_name)],
            "requests": monitoring_reads.requests_per_hour(ledger, model_name),
            "shadow": monitoring_reads.shadow_agreement(ledger, model_name),
            "shadow_hours": monitoring_reads.shadow_per_hour(ledger, model_name),
        }
    except (DBAPIError, SQLAlchemyError) as exc:
        raise _ledger_failure(url, exc) from exc


def _check_registry(tracking_uri: str) -> None:
    """Fail fast, with what to do, when the registry cannot answer (MLflow itself retries)."""
    scheme = urlparse(tracking_uri).scheme
    if scheme in ("http", "https"):
        try:
            httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=CONNECT_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise SourceError(
                "registry",
                f"the MLflow registry at {tracking_uri} is not answering ({exc.__class__.__name__})",
                "start the MLflow server, or point MLFLOW_TRACKING_URI at it",
            ) from exc
    elif scheme == "sqlite":
        path = _sqlite_path(tracking_uri)
        if path is not None and not path.is_file():
            raise SourceError(
                "registry",
                f"there is no MLflow registry at {path} yet",
                "run the pipeline once (`make demo`), or point MLFLOW_TRACKING_URI at it",
            )


def production_version(tracking_uri: str, model_name: str) -> str | None:
    """The version carrying the ``production`` alias (``tasks.core.registry.champion``); None: none."""
    _check_registry(tracking_uri)
    from tasks.core import registry  # MLflow takes a second to import: only when asked

    try:
        found = registry.champion(registry.client(tracking_uri), model_name)
    except Exception as exc:  # MLflow raises many kinds; each means "no answer"
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise SourceError(
            "registry",
            f"the MLflow registry at {safe_url(tracking_uri)} did not say which version of "
            f"{model_name} is in production ({exc.__class__.__name__}: {first})",
            "check MLFLOW_TRACKING_URI and the registry's log",
        ) from exc
    return None if found is None else str(found.version)


def read_report(settings: UiSettings, key: str) -> bytes:
    """A report (validation or drift, HTML or JSON) from the lake."""
    from tasks.core.settings import TaskSettings
    from tasks.core.storage import StorageError, open_store

    try:
        store = open_store(
            settings.storage_url,
            TaskSettings(
                storage_url=settings.storage_url,
                s3_endpoint_url=settings.s3_endpoint_url,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key,
                aws_region=settings.aws_region,
            ),
        )
        return store.get_bytes(key)
    except (FileNotFoundError, KeyError) as exc:
        raise SourceError(
            "lake",
            f"the report {key} is not in the lake at {settings.storage_url}",
            "re-run the step that writes it for this batch, or check STORAGE_URL",
        ) from exc
    except (StorageError, ValueError, OSError) as exc:
        raise SourceError(
            "lake",
            f"the lake at {settings.storage_url} could not give {key}: {exc}",
            "check STORAGE_URL and, for s3://, S3_ENDPOINT_URL and the credentials",
        ) from exc
