"""A pure ASGI middleware counting requests and timing them per endpoint and status.

Pure ASGI (not ``BaseHTTPMiddleware``) so it costs microseconds on the hot path. The endpoint
label is the route's path template (``/predict``), never the raw URL, so unknown URLs cannot
explode the series count: they share ``endpoint="unmatched"``.
"""

from __future__ import annotations

import time
from typing import Any

from serving.metrics import ServingMetrics

Scope = dict[str, Any]


class RequestMetrics:
    def __init__(self, app: Any, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            labels = (endpoint, scope.get("method", ""), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.request_latency.labels(*labels).observe(time.perf_counter() - started)
