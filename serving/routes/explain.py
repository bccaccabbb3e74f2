"""POST /explain: one record's price and SHAP contributions per input feature."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving.answers import json_response, request_id, response
from serving.fast_model import records_to_columns
from serving.predict_lane import Answer
from serving.records import RecordsInvalidError, parse_record
from serving.responses import EXPLAIN_SPACE, ExplainResponse, json_body, refusals
from serving.service import Service

RECORD_REF = "#/components/schemas/Record"


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/explain",
        summary="One record's price and SHAP contributions per input feature, in log1p(price)",
        description=(
            "Contributions are SHAP values of the gradient-boosted trees, summed over the "
            "columns each input feature became (one-hot levels, missing indicators). They add "
            "up in log1p(price) space: base_value + sum(contributions) = log_price, and "
            "price = expm1(log_price). The explainer is built once per model version."
        ),
        response_model=ExplainResponse,
        responses=refusals(
            "a body larger than SERVING_MAX_BODY_BYTES", "no model, or no explainer for it"
        ),
        openapi_extra=json_body({"$ref": RECORD_REF}),
    )
    async def explain(request: Request) -> Response:
        rid = request_id(request.headers.get("x-request-id"))
        body = await service.body_of(request)
        if isinstance(body, Answer):
            return response(body)
        try:
            record = parse_record(body)
        except RecordsInvalidError as exc:
            return json_response({"detail": exc.errors}, 422)
        model = service.watcher.current
        if model is None:
            return response(service.unavailable(rid))
        if model.explainer is None:
            return json_response({"detail": model.fast_path.explain_reason, "request_id": rid}, 503)
        features = record.features()
        loop = asyncio.get_running_loop()
        try:
            [explanation] = await loop.run_in_executor(
                service.explain_pool, model.explainer.explain, records_to_columns([features])
            )
        except ValueError as exc:
            return json_response({"detail": f"the model cannot explain this record: {exc}"}, 422)
        service.metrics.explanations.labels(model.version).inc()
        return json_response(
            {
                "request_id": rid,
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
                "warnings": service.warn(model, [features]),
            },
            headers={"X-Request-ID": rid, "X-Model-Version": model.version},
        )

    return routes
