"""Start a (group, day) of the data API over: restart its batches and reset the ledger cursor.

``python -m tasks.replay [--group-number N] [--day D]`` (defaults from GROUP_NUMBER, DAY).

Calls ``GET /restart_data_generation?group_number=N&day=D`` on the data API, then
:meth:`tasks.core.ledger.Ledger.reset_cursor`. Stored batches stay: when the pipeline fetches them
again they come back as ``duplicate`` and every later step returns what it recorded.
"""

from __future__ import annotations

from typing import Any

import httpx

from tasks.core.api_client import check_base_url
from tasks.core.cli import GroupDayInputs, Step
from tasks.core.ledger import Ledger
from tasks.core.logs import get_logger
from tasks.core.settings import TaskSettings

log = get_logger(__name__)


class ReplayInputs(GroupDayInputs):
    """Inputs of tasks.replay."""


def restart_api(base_url: str, group_number: int, day: str, timeout: float) -> dict[str, Any]:
    """Ask the data API to serve (group, day) from batch 1 again."""
    url = check_base_url(base_url) + "/restart_data_generation"
    try:
        response = httpx.get(
            url, params={"group_number": group_number, "day": day}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise RuntimeError(
            f"the data API at {base_url} did not answer ({type(exc).__name__}: {exc}); "
            "check DATA_API_URL and that the API is up"
        ) from exc
    if response.status_code != 200:
        raise RuntimeError(
            f"the data API refused the restart of group {group_number}, day {day!r}: "
            f"HTTP {response.status_code} {response.text[:300]}"
        )
    try:
        return response.json()
    except ValueError:
        return {"body": response.text[:300]}


def run(inputs: ReplayInputs, settings: TaskSettings) -> dict[str, Any]:
    group_number, day = inputs.resolve(settings)
    answer = restart_api(
        settings.data_api_url, group_number, day, settings.fetch_connect_timeout_seconds + 30
    )
    ledger = Ledger.of(settings)
    before = ledger.cursor(group_number, day)
    resolved = ledger.reset_cursor(group_number, day)
    log.info("replay.cursor_reset", group_number=group_number, day=day)
    return {
        "group_number": group_number,
        "day": day,
        "api": answer,
        "previous_last_batch_number": before.last_batch_number if before else None,
        "previously_exhausted": bool(before and before.exhausted_at),
        "resolved_incidents": resolved,
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"replay: group {result['group_number']} day {result['day']}: the API and the ledger "
        f"cursor start from the first batch again (was at "
        f"{result['previous_last_batch_number']})"
    )


STEP = Step("replay", ReplayInputs, run, summary, doc=__doc__)
main = STEP.main
