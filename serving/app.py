"""The FastAPI app: predict, explain, the served model's story, health, readiness, metrics.

``create_app(settings)`` wires small parts together: the :class:`~serving.watcher.ModelWatcher`
(registry polls, background loads, atomic swaps), the :class:`~serving.batcher.MicroBatcher`
(concurrent requests share one predict call on one worker thread), the inference log's writer
and exporter threads, and the Prometheus metrics. The lifespan starts them; nothing waits for
the first model: until it is loaded /ready, /predict and /explain answer 503 saying why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Header, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from serving import __version__
from serving.batcher import Job, MicroBatcher, NoModelError
from serving.decisions import no_model_message, readiness
from serving.errors import describe
from serving.fast_model import records_to_columns
from serving.http_metrics import RequestMetrics
from serving.inference_export import InferenceExporter
from serving.inference_log import InferenceLogWriter, log_rows
from serving.metrics import CONTENT_TYPE, ServingMetrics
from serving.predict_lane import Admission, Answer, ClientDisconnectedError, PredictLane, admit
from serving.records import (
    Record,
    RecordsInvalidError,
    RecordsTooLargeError,
    parse_record,
    parse_records,
    records_schema,
)
from serving.responses import (
    EXPLAIN_SPACE,
    ErrorResponse,
    ExplainResponse,
    PredictResponse,
    model_document,
    model_summary,
)
from serving.settings import ServingSettings
from serving.state import LoadedModel
from serving.watcher import ModelWatcher
from tasks.core.logs import configure_logging, get_logger
from tasks.core.storage import open_store

log = get_logger("serving")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
RECORD_REF = "#/components/schemas/Record"

DESCRIPTION = """\
House prices from the Realtor model in production (`models:/<MODEL_NAME>@<MODEL_ALIAS>`).

- `POST /predict`: one record or a list of records -> prices in dollars and the model version.
- `POST /explain`: one record -> its price and SHAP contributions per input feature. They add
  up in **log1p(price)** space: `base_value + sum(contributions) = log_price`, and
  `price = expm1(log_price)`.
- `GET /model`: the served version, its metrics, the batches it was trained on, when and why it
  was promoted, and the registry's health. `GET /ready` is 503 until a model is loaded.

Bodies are JSON (`Content-Type: application/json`, else 415) of at most
`SERVING_MAX_BODY_BYTES` (else 413). Prices are in dollars, rounded to cents. Each answer lists
`warnings`: values outside the range the served version was trained on, and unseen categories.

A new version is loaded in the background when the alias moves and swapped in atomically.
"""


def _answer(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Answer:
    encoded = json.dumps(body, allow_nan=False, default=str).encode()
    return Answer(status_code, encoded, tuple((headers or {}).items()))


def _response(answer: Answer) -> Response:
    return Response(
        answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers=dict(answer.headers),
    )


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _response(_answer(body, status_code, headers))


def _request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else a new one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


def _cents(prices: np.ndarray) -> list[float]:
    """Prices in dollars rounded to cents, by one rule wherever a price leaves the service
    (answers of the fast path and the reference path, the inference log): Python's ``round``,
    correctly rounded, 0.6 us for one price where ``np.round`` takes 3 us."""
    return [round(price, 2) for price in np.asarray(prices, dtype=np.float64).tolist()]


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the app; the lifespan starts the watcher, the batcher and the log threads."""
    settings = settings or ServingSettings()
    configure_logging(settings.log_format, settings.log_level)
    metrics = ServingMetrics()
    watcher = ModelWatcher(settings, metrics)
    admission = Admission(settings.body_limit, "SERVING_MAX_BODY_BYTES")
    writer: InferenceLogWriter | None = None
    exporter: InferenceExporter | None = None
    if settings.inference_log_enabled:
        writer = InferenceLogWriter(
            settings.ledger_url,
            metrics,
            capacity=settings.inference_log_queue_rows,
            batch_rows=settings.inference_log_batch_rows,
            flush_seconds=settings.inference_log_flush_seconds,
            timeout_seconds=settings.inference_log_db_timeout_seconds,
        )
        exporter = InferenceExporter(
            writer,
            lambda: open_store(settings.storage_url, settings),
            metrics,
            interval_seconds=settings.inference_export_interval_seconds,
            max_rows=settings.inference_export_max_rows,
        )

    def observe(model: LoadedModel, jobs: list[Job], prices: list[np.ndarray]) -> None:
        """After each predict call, on the worker thread: metrics and the inference log."""
        rows = sum(len(p) for p in prices)
        if not rows:
            return
        metrics.predictions.labels(model.version).inc(rows)
        metrics.micro_batch_rows.observe(rows)
        for batch in prices:
            for price in batch.tolist():
                metrics.predicted_price.observe(price)
        if writer is not None:
            now = dt.datetime.now(dt.UTC)
            logged: list[dict[str, Any]] = []
            for job, batch in zip(jobs, prices, strict=True):
                cents = np.asarray(_cents(batch))  # the prices the client got
                logged += log_rows(
                    model.name, model.version, job.request_id, job.records, cents, now
                )
            writer.offer(logged)

    batcher = MicroBatcher(
        lambda: watcher.current,
        max_rows=settings.micro_batch_max_rows,
        max_wait_seconds=settings.micro_batch_max_wait_ms / 1000,
        observer=observe,
    )
    explain_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        if writer is not None and exporter is not None:
            writer.start()
            exporter.start()
        await batcher.start()
        log.info(
            "serving.started",
            model_name=settings.model_name,
            alias=settings.model_alias,
            tracking_uri=settings.mlflow_tracking_uri,
            poll_interval_seconds=settings.poll_interval_seconds,
            inference_log=settings.inference_log_enabled,
        )
        try:
            yield
        finally:
            await batcher.stop()
            watcher.stop()
            explain_pool.shutdown(wait=False, cancel_futures=True)
            if writer is not None and exporter is not None:
                await asyncio.to_thread(writer.stop)
                await asyncio.to_thread(exporter.stop)
            log.info("serving.stopped")

    app = FastAPIOffline(  # /docs and /redoc with their JS and CSS from the package
        title="Realtor price serving",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.watcher = watcher
    app.state.inference_log = writer
    app.state.inference_export = exporter

    def unavailable(request_id: str | None = None) -> Answer:
        message = no_model_message(
            settings.model_alias, settings.model_name, watcher.registry, watcher.loading
        )
        body: dict[str, Any] = {"detail": message}
        if request_id:
            body["request_id"] = request_id
        return _answer(body, 503, {"Retry-After": "5"})

    def parse(body: bytes, max_rows: int) -> tuple[list[Record], bool] | Answer:
        try:
            return parse_records(body, max_rows)
        except RecordsTooLargeError as exc:
            return _answer({"detail": str(exc)}, 413)
        except RecordsInvalidError as exc:
            return _answer({"detail": exc.errors}, 422)

    def warn(model: LoadedModel, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The out-of-distribution warnings of these records for this version, counted."""
        if model.ranges is None:
            return []
        found = model.ranges.check(features)
        for warning in found:
            metrics.input_warnings.labels(warning["feature"], warning["kind"]).inc()
        return found

    async def body_of(request: Request) -> bytes | Answer:
        """A route's body, admitted as the lane admits it (415, 413 before reading it all)."""
        try:
            return await admit(
                admission,
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.receive,
            )
        except ClientDisconnectedError:
            return _answer({"detail": "the client went away before its body arrived"}, 400)

    async def answer_predict(body: bytes, given_request_id: str | None) -> Answer:
        """POST /predict, for the FastAPI route and the ASGI lane alike."""
        started = time.perf_counter()
        request_id = _request_id(given_request_id)
        parsed = parse(body, settings.max_batch_rows)
        if isinstance(parsed, Answer):
            return parsed
        records, _ = parsed
        if watcher.current is None:
            return unavailable(request_id)
        features = [r.features() for r in records]
        try:
            result = await batcher.predict(features, request_id)
        except NoModelError:
            return unavailable(request_id)
        except ValueError as exc:  # a value the model itself refuses
            return _answer({"detail": f"the model cannot predict these records: {exc}"}, 422)
        metrics.prediction_latency.observe(time.perf_counter() - started)
        return _answer(
            {
                "request_id": request_id,
                "model_name": result.model.name,
                "model_version": result.model.version,
                "prices": _cents(result.prices),
                "warnings": warn(result.model, features),
            },
            headers={"X-Request-ID": request_id, "X-Model-Version": result.model.version},
        )

    @app.get("/health", summary="Liveness: 200 while the process runs")
    def health() -> dict[str, Any]:
        current = watcher.current
        return {
            "status": "ok",
            "version": __version__,
            "model_version": current.version if current else None,
        }

    @app.get(
        "/ready",
        summary="Readiness: 200 once a model is loaded (even if the registry is down), else 503",
        responses={503: {"description": "no model loaded yet; the body says why"}},
    )
    def ready() -> Response:
        current = watcher.current
        failure = watcher.last_failure
        answer = readiness(
            model_summary(current) if current else None,
            watcher.registry,
            settings.model_alias,
            loading=watcher.loading,
            last_failure=failure,
        )
        return _json(answer.body, answer.status_code)

    @app.post(
        "/predict",
        summary="Prices for one record or a list of records",
        response_model=PredictResponse,
        responses={
            413: {
                "model": ErrorResponse,
                "description": "more records than SERVING_MAX_BATCH_ROWS, or a body larger "
                "than SERVING_MAX_BODY_BYTES",
            },
            415: {"model": ErrorResponse, "description": "the body is not sent as JSON"},
            422: {"model": ErrorResponse, "description": "a field breaks a rule: loc names it"},
            503: {"model": ErrorResponse, "description": "no model loaded yet"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": records_schema(settings.max_batch_rows)}
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        # Served by PredictLane (below) before routing; declared here for OpenAPI and /docs.
        body = await body_of(request)
        if isinstance(body, Answer):
            return _response(body)
        return _response(await answer_predict(body, request.headers.get("x-request-id")))

    @app.post(
        "/explain",
        summary="One record's price and SHAP contributions per input feature, in log1p(price)",
        description=(
            "Contributions are SHAP values of the gradient-boosted trees, summed over the "
            "columns each input feature became (one-hot levels, missing indicators). They add "
            "up in log1p(price) space: base_value + sum(contributions) = log_price, and "
            "price = expm1(log_price). The explainer is built once per model version."
        ),
        response_model=ExplainResponse,
        responses={
            413: {
                "model": ErrorResponse,
                "description": "a body larger than SERVING_MAX_BODY_BYTES",
            },
            415: {"model": ErrorResponse, "description": "the body is not sent as JSON"},
            422: {"model": ErrorResponse, "description": "a field breaks a rule: loc names it"},
            503: {"model": ErrorResponse, "description": "no model, or no explainer for it"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": RECORD_REF}}},
            }
        },
    )
    async def explain(request: Request) -> Response:
        request_id = _request_id(request.headers.get("x-request-id"))
        body = await body_of(request)
        if isinstance(body, Answer):
            return _response(body)
        try:
            record = parse_record(body)
        except RecordsInvalidError as exc:
            return _json({"detail": exc.errors}, 422)
        model = watcher.current
        if model is None:
            return _response(unavailable(request_id))
        if model.explainer is None:
            return _json({"detail": model.fast_path.explain_reason, "request_id": request_id}, 503)
        features = record.features()
        loop = asyncio.get_running_loop()
        try:
            [explanation] = await loop.run_in_executor(
                explain_pool, model.explainer.explain, records_to_columns([features])
            )
        except ValueError as exc:
            return _json({"detail": f"the model cannot explain this record: {exc}"}, 422)
        metrics.explanations.labels(model.version).inc()
        return _json(
            {
                "request_id": request_id,
                "model_name": model.name,
                "model_version": model.version,
                "price": round(float(explanation.price), 2),
                "log_price": float(explanation.log_price),
                "space": EXPLAIN_SPACE,
                "base_value": float(explanation.base_value),
                "contributions": {k: float(v) for k, v in explanation.contributions.items()},
                "features": {
                    k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in features.items()
                },
                "warnings": warn(model, [features]),
            },
            headers={"X-Request-ID": request_id, "X-Model-Version": model.version},
        )

    @app.get(
        "/model",
        summary="The served version: metrics, training batches and reasons, promotion, health",
        responses={503: {"model": ErrorResponse, "description": "no model loaded yet"}},
    )
    def model_info() -> Response:
        model = watcher.current
        failure = watcher.last_failure
        failure_doc = (
            {"version": failure.version, "at": failure.at.isoformat(), "error": failure.error}
            if failure
            else None
        )
        if model is None:
            message = no_model_message(
                settings.model_alias, settings.model_name, watcher.registry, watcher.loading
            )
            return _json(
                {
                    "detail": message,
                    "registry": watcher.registry.as_dict(),
                    "loading": watcher.loading,
                    "last_load_failure": failure_doc,
                },
                503,
            )
        document = model_document(
            model, watcher.registry, loading=watcher.loading, last_failure=failure_doc
        )
        if writer is not None and exporter is not None:
            document["inference_log"] = {**writer.status(), "export": exporter.status()}
        return _json(document)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.post(
        "/admin/reload",
        summary="Poll the registry now and load the alias's version (Bearer SERVING_ADMIN_TOKEN)",
        responses={
            401: {"model": ErrorResponse, "description": "no bearer token"},
            403: {"model": ErrorResponse, "description": "wrong token, or admin disabled"},
        },
    )
    async def admin_reload(
        authorization: Annotated[str | None, Header()] = None,
        force: Annotated[
            bool, Query(description="reload even if the version is already served")
        ] = False,
    ) -> Response:
        expected = settings.admin_token
        if expected is None or not expected.get_secret_value():
            return _json(
                {"detail": "admin endpoints are disabled: set SERVING_ADMIN_TOKEN to enable them"},
                403,
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _json(
                {"detail": "send the admin token as 'Authorization: Bearer <SERVING_ADMIN_TOKEN>'"},
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(token.strip().encode(), expected.get_secret_value().encode()):
            return _json({"detail": "the admin token is wrong"}, 403)
        try:
            outcome = await asyncio.to_thread(watcher.poll, force)
        except Exception as exc:  # poll handles its own failures; this is a last resort
            return _json({"detail": f"reload failed: {describe(exc)}"}, 500)
        log.info("admin.reload", **{k: v for k, v in outcome.items() if v is not None})
        return _json(outcome)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Record"] = Record.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Outermost last: the metrics time the lane's requests too.
    predict_route = next(r for r in app.routes if getattr(r, "path", None) == "/predict")
    app.add_middleware(
        PredictLane,
        path="/predict",
        handler=answer_predict,
        route=predict_route,
        admission=admission,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
