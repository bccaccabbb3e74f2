"""What the pages show when a source they read (serving, ledger, lake, registry) fails.

Every data-access function of the UI raises :class:`SourceError` (never a library's own
exception): which source, what went wrong, and what to do. Pages show the three, never a trace.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url


class SourceError(RuntimeError):
    """``source`` (serving, ledger, lake, registry) failed: ``problem``; ``fix`` says what to do."""

    def __init__(self, source: str, problem: str, fix: str) -> None:
        super().__init__(f"{problem} ({fix})")
        self.source = source
        self.problem = problem
        self.fix = fix


class ServingDownError(SourceError):
    """Serving did not answer at all (refused, timed out)."""


class NoModelError(SourceError):
    """Serving answers but has no model loaded (HTTP 503)."""


class InputRejectedError(SourceError):
    """Serving refused the record (HTTP 422); ``fields`` maps each field to its rule."""

    def __init__(self, problem: str, fix: str, fields: dict[str, str]) -> None:
        super().__init__("serving", problem, fix)
        self.fields = fields


def safe_url(url: str) -> str:
    """``url`` with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (file://, http://): nothing secret in our URLs
        return url.split("@")[-1] if "@" in url else url
