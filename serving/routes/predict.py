"""POST /predict: prices for one record or a list of records.

The predict lane (:class:`serving.predict_lane.PredictLane`) serves it before routing, with
:func:`answer_predict`; the route declared here gives OpenAPI and /docs the same answer.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving.answers import answer, cents, request_id, response
from serving.batcher import NoModelError
from serving.predict_lane import Answer
from serving.records import RecordsInvalidError, RecordsTooLargeError, parse_records, records_schema
from serving.responses import PredictResponse, json_body, refusals
from serving.service import Service


async def answer_predict(service: Service, body: bytes, given_request_id: str | None) -> Answer:
    """POST /predict, for the FastAPI route and the ASGI lane alike."""
    started = time.perf_counter()
    rid = request_id(given_request_id)
    try:
        records, _ = parse_records(body, service.settings.max_batch_rows)
    except RecordsTooLargeError as exc:
        return answer({"detail": str(exc)}, 413)
    except RecordsInvalidError as exc:
        return answer({"detail": exc.errors}, 422)
    if service.watcher.current is None:
        return service.unavailable(rid)
    features = [r.features() for r in records]
    try:
        result = await service.batcher.predict(features, rid)
    except NoModelError:
        return service.unavailable(rid)
    except ValueError as exc:  # a value the model itself refuses
        return answer({"detail": f"the model cannot predict these records: {exc}"}, 422)
    service.metrics.prediction_latency.observe(time.perf_counter() - started)
    return answer(
        {
            "request_id": rid,
            "model_name": result.model.name,
            "model_version": result.model.version,
            "prices": cents(result.prices),
            "warnings": service.warn(result.model, features),
        },
        headers={"X-Request-ID": rid, "X-Model-Version": result.model.version},
    )


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/predict",
        summary="Prices for one record or a list of records",
        response_model=PredictResponse,
        responses=refusals(
            "more records than SERVING_MAX_BATCH_ROWS, or a body larger than "
            "SERVING_MAX_BODY_BYTES",
            "no model loaded yet",
        ),
        openapi_extra=json_body(records_schema(service.settings.max_batch_rows)),
    )
    async def predict(request: Request) -> Response:
        # Served by PredictLane before routing; declared here for OpenAPI and /docs.
        body = await service.body_of(request)
        if isinstance(body, Answer):
            return response(body)
        return response(await answer_predict(service, body, request.headers.get("x-request-id")))

    return routes
