"""What the platform asks of the process: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from serving import __version__
from serving.answers import json_response
from serving.decisions import readiness
from serving.metrics import CONTENT_TYPE
from serving.responses import model_summary
from serving.service import Service


def router(service: Service) -> APIRouter:
    routes = APIRouter()
    watcher = service.watcher

    @routes.get("/health", summary="Liveness: 200 while the process runs")
    def health() -> dict[str, Any]:
        current = watcher.current
        return {
            "status": "ok",
            "version": __version__,
            "model_version": current.version if current else None,
        }

    @routes.get(
        "/ready",
        summary="Readiness: 200 once a model is loaded (even if the registry is down), else 503",
        responses={503: {"description": "no model loaded yet; the body says why"}},
    )
    def ready() -> Response:
        current = watcher.current
        answer = readiness(
            model_summary(current) if current else None,
            watcher.registry,
            service.settings.model_alias,
            loading=watcher.loading,
            last_failure=watcher.last_failure,
        )
        return json_response(answer.body, answer.status_code)

    @routes.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return routes
