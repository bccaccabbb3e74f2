"""GET /model: the served version, its metrics, training batches and reasons, promotion, and
the registry's health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from serving.answers import json_response
from serving.decisions import no_model_message
from serving.responses import ErrorResponse, challenger_document, model_document
from serving.service import Service


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.get(
        "/model",
        summary="The served version: metrics, training batches and reasons, promotion, health",
        responses={503: {"model": ErrorResponse, "description": "no model loaded yet"}},
    )
    def model_info() -> Response:
        watcher, settings = service.watcher, service.settings
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
            return json_response(
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
        if settings.challenger_alias:
            document["challenger"] = challenger_document(
                settings.challenger_alias, watcher.challenger, watcher.challenger_failure
            )
        if service.shadow is not None:
            document["shadow"] = service.shadow.status(model)
        if service.writer is not None and service.exporter is not None:
            document["inference_log"] = {
                **service.writer.status(),
                "export": service.exporter.status(),
            }
        return json_response(document)

    return routes
