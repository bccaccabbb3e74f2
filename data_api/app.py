"""The FastAPI app: the course's ``/data`` contract plus health, scenarios and fault admin.

``GET /data?group_number=N&day=D`` serves the next batch of the (N, D) cursor and advances it;
after the last batch it answers 400 ``{"detail": end_of_data_message}``. With
``min_interval_seconds > 0`` a request that comes sooner than that after the cursor last
advanced does not advance: it gets the same batch again (``window_mode`` repeat: same bytes)
or a new random sample under the same batch_number (resample: the course's time window).
The course's other variants are settings too: ``first_batch_number`` 0, the accentless end
message, 400 "Número de grupo inválido" for a group outside 1-10, ``["ok"]`` from the restart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from data_api import __version__
from data_api.batches import BatchStore, EncodedBatch
from data_api.cursors import CursorStore
from data_api.faults import FaultConfig, FaultInjector
from data_api.scenarios import SCENARIOS
from data_api.settings import END_OF_DATA, INVALID_GROUP, Settings
from tasks.core.logs import configure_logging, get_logger

__all__ = ["END_OF_DATA", "create_app"]
GroupNumber = Annotated[int, Query(ge=1, le=10, description="group number, 1..10")]
Day = Annotated[str, Query(min_length=1, max_length=64, description="day of the week")]

log = get_logger("data_api")


class EndOfDataError(Exception):
    """Every batch of the cursor was served."""


class DataService:
    """Cursors + encoded batches: decides which batch a request gets."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cursors = CursorStore()
        self.batches = BatchStore(settings.seed, settings.scale, settings.cache_batches)

    def next_batch(self, group_number: int, day: str, *, advance: bool = True) -> EncodedBatch:
        """The batch this request gets; with ``advance=False`` a peek that changes nothing."""
        key = (group_number, day)
        settings = self.settings
        with self.cursors.lock(key):
            cursor = self.cursors.get(key)
            now = time.monotonic()
            interval = settings.min_interval_seconds
            repeat = (
                cursor.served > 0
                and interval > 0
                and cursor.advanced_at is not None
                and now - cursor.advanced_at < interval
            )
            if repeat:
                sample = 0
                if settings.window_mode == "resample":
                    sample = cursor.samples + 1
                    if advance:
                        cursor.samples = sample
                return self._get(group_number, day, cursor.served, sample)
            if cursor.served >= len(SCENARIOS):
                raise EndOfDataError
            batch = self._get(group_number, day, cursor.served + 1, 0)
            if advance:
                cursor.served += 1
                cursor.advanced_at = time.monotonic()
                cursor.samples = 0
            return batch

    def _get(self, group_number: int, day: str, scenario: int, sample: int) -> EncodedBatch:
        served_as = scenario - 1 + self.settings.first_batch_number
        return self.batches.get(group_number, day, scenario, served_as=served_as, sample=sample)


def _fault_response(mode: str, body: bytes) -> Response:
    if mode == "lost_answer":
        return JSONResponse({"detail": "simulated lost answer (fault injection)"}, 502)
    if mode == "error500":
        return JSONResponse({"detail": "simulated internal error (fault injection)"}, 500)
    if mode == "timeout":
        return JSONResponse({"detail": "simulated timeout (fault injection)"}, 504)
    # malformed: a 200 whose body stops halfway (a strict prefix of a JSON object never parses)
    return Response(content=body[: max(1, len(body) // 2)], media_type="application/json")


async def _faulted(
    fault: str,
    service: DataService,
    settings: Settings,
    config: FaultConfig,
    group_number: int,
    day: str,
) -> Response:
    """The answer of a /data request the fault injector chose to fail."""
    if fault == "timeout":
        log.warning("fault_injected", mode=fault, group_number=group_number, day=day)
        await asyncio.sleep(config.timeout_seconds)
        return _fault_response(fault, b"")
    if fault == "lost_answer":  # the cursor moves on, then the answer never arrives
        try:
            lost = await run_in_threadpool(service.next_batch, group_number, day)
            log.warning(
                "fault_injected", mode=fault, batch_number=lost.batch_number, rows=lost.rows
            )
        except EndOfDataError:
            pass
        return _fault_response(fault, b"")
    log.warning("fault_injected", mode=fault, group_number=group_number, day=day)
    body = b'{"detail":"' + settings.end_of_data_message.encode() + b'"}'
    if fault == "malformed":
        try:
            peek = await run_in_threadpool(service.next_batch, group_number, day, advance=False)
            body = peek.body
        except EndOfDataError:
            pass
    return _fault_response(fault, body)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing is generated until the first ``/data`` request."""
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    service = DataService(settings)
    faults = FaultInjector(FaultConfig.from_settings(settings), settings.seed)
    app = FastAPI(
        title="Realtor data API simulator",
        version=__version__,
        description="The course's batch contract over synthetic Realtor (USA real estate) data.",
    )
    app.state.settings = settings
    app.state.service = service
    app.state.faults = faults

    if settings.invalid_group_status == 400:

        @app.exception_handler(RequestValidationError)
        async def invalid_group(request: Request, exc: RequestValidationError) -> JSONResponse:
            if any(error.get("loc", [None])[-1] == "group_number" for error in exc.errors()):
                return JSONResponse({"detail": INVALID_GROUP}, 400)
            return JSONResponse({"detail": exc.errors()}, 422)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {
            "status": "ok",
            "seed": settings.seed,
            "scale": settings.scale,
            "batches": len(SCENARIOS),
            "min_interval_seconds": settings.min_interval_seconds,
            "window_mode": settings.window_mode,
            "first_batch_number": settings.first_batch_number,
            "version": __version__,
        }

    @app.get("/scenarios")
    def scenarios() -> dict[str, object]:
        return {
            "seed": settings.seed,
            "scale": settings.scale,
            "batches": [s.describe(settings.scale) for s in SCENARIOS],
        }

    @app.get("/data")
    async def data(group_number: GroupNumber, day: Day = "Tuesday") -> Response:
        fault = faults.decide()
        if fault is not None:
            return await _faulted(fault, service, settings, faults.config, group_number, day)
        try:
            batch = await run_in_threadpool(service.next_batch, group_number, day)
        except EndOfDataError:
            log.info("end_of_data", group_number=group_number, day=day)
            raise HTTPException(status_code=400, detail=settings.end_of_data_message) from None
        log.info(
            "batch_served",
            group_number=group_number,
            day=day,
            batch_number=batch.batch_number,
            rows=batch.rows,
            bytes=len(batch.body),
            seconds=round(batch.seconds, 3),
            cached=batch.cached,
        )
        return Response(content=batch.body, media_type="application/json")

    @app.get("/restart_data_generation")
    def restart_data_generation(
        group_number: GroupNumber, day: Day = "Tuesday"
    ) -> dict[str, object] | list[str]:
        service.cursors.reset((group_number, day))
        log.info("cursor_reset", group_number=group_number, day=day)
        if settings.restart_answer == "ok_list":
            return ["ok"]
        return {"ok": True, "group_number": group_number, "day": day}

    @app.get("/admin/faults")
    def get_faults() -> dict[str, object]:
        return faults.snapshot()

    @app.put("/admin/faults")
    def put_faults(config: FaultConfig) -> dict[str, object]:
        faults.configure(config)
        log.info("faults_configured", **config.model_dump())
        return faults.snapshot()

    return app
