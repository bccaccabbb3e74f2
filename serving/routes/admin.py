"""POST /admin/reload: poll the registry now, behind the bearer token SERVING_ADMIN_TOKEN."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from serving.answers import json_response
from serving.errors import describe
from serving.responses import ErrorResponse
from serving.service import Service
from tasks.core.logs import get_logger

log = get_logger("serving")


def refusal(expected: str | None, authorization: str | None) -> Response | None:
    """Why this request may not reload (403 disabled or wrong token, 401 no token), or None."""
    if not expected:
        return json_response(
            {"detail": "admin endpoints are disabled: set SERVING_ADMIN_TOKEN to enable them"},
            403,
        )
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return json_response(
            {"detail": "send the admin token as 'Authorization: Bearer <SERVING_ADMIN_TOKEN>'"},
            401,
            {"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return json_response({"detail": "the admin token is wrong"}, 403)
    return None


def router(service: Service) -> APIRouter:
    routes = APIRouter()

    @routes.post(
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
        token = service.settings.admin_token
        refused = refusal(token.get_secret_value() if token else None, authorization)
        if refused is not None:
            return refused
        try:
            outcome = await asyncio.to_thread(service.watcher.poll, force)
        except Exception as exc:  # poll handles its own failures; this is a last resort
            return json_response({"detail": f"reload failed: {describe(exc)}"}, 500)
        log.info("admin.reload", **{k: v for k, v in outcome.items() if v is not None})
        return json_response(outcome)

    return routes
