"""A real HTTP server in front of the real serving that adds out-of-distribution warnings.

Serving's ``/explain`` answers gain a ``warnings`` list (issue 17); until the serving that
sends them is there, the UI's rendering of them is tested through this proxy: every request
is passed to the real serving as is, and each ``POST /explain`` answer gets the warnings
``add_warnings(record)`` makes for its record. Every request is kept (path, content type,
body), so a test can check what the UI sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Warnings = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class Sent:
    """One request the UI sent."""

    method: str
    path: str
    content_type: str
    body: Any


@dataclass
class WarningProxy:
    url: str
    sent: list[Sent] = field(default_factory=list)


def typical_warnings(record: dict[str, Any]) -> list[dict[str, Any]]:
    """What serving says of a record past its training data: a size above 52,000 sq ft, and
    a city other than Los Angeles (the shape of issue 17's contract)."""
    found: list[dict[str, Any]] = []
    size = record.get("house_size")
    if size is not None and size > 52_000:
        found.append(
            {"row": 0, "feature": "house_size", "kind": "above_range", "value": size,
             "range": [120.0, 52_000.0],
             "message": f"house_size {size:,.0f} is above the largest the model was trained on "
                        "(52,000)"}
        )  # fmt: skip
    city = record.get("city")
    if city is not None and city != "Los Angeles":
        found.append(
            {"row": 0, "feature": "city", "kind": "unseen_category", "value": city,
             "range": None, "message": f"city {city!r} was not in the training data"}
        )  # fmt: skip
    return found


@contextmanager
def warning_proxy(
    serving_url: str, add_warnings: Warnings = typical_warnings
) -> Iterator[WarningProxy]:
    """Serve on a free port of 127.0.0.1 for the ``with`` block."""
    proxy = WarningProxy("")
    upstream = httpx.Client(base_url=serving_url, timeout=30.0)

    class Handler(BaseHTTPRequestHandler):
        def _relay(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            proxy.sent.append(Sent(method, self.path, content_type, body))
            headers = {"Content-Type": content_type} if content_type else {}
            answer = upstream.request(method, self.path, content=raw, headers=headers)
            payload = answer.content
            if method == "POST" and self.path == "/explain" and answer.status_code == 200:
                explained = answer.json()
                explained["warnings"] = add_warnings(body if isinstance(body, dict) else {})
                payload = json.dumps(explained).encode()
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("content-type", "text/plain"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._relay("GET")

        def do_POST(self) -> None:
            self._relay("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()
