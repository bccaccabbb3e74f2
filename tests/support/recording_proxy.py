"""A real HTTP proxy that forwards to an upstream API and records every answer it passes on.

Tests count what was *served* here, independently of what the client stored: each answer's
status, body bytes and sha256, and the records in a ``data`` list.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class Answer:
    path: str
    status: int
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def rows(self) -> int | None:
        """Records in the body's ``data`` list (None when there is none)."""
        try:
            payload = json.loads(self.body)
        except ValueError:
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        return len(data) if isinstance(data, list) else None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        proxy: RecordingProxy = self.server.proxy  # type: ignore[attr-defined]
        with proxy.lock:
            proxy.requested.append(self.path)
        response = httpx.get(proxy.upstream + self.path, timeout=60)
        body = response.content
        with proxy.lock:
            proxy.answers.append(Answer(self.path, response.status_code, body))
        self.send_response(response.status_code)
        self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.answers: list[Answer] = []
        self.requested: list[str] = []  # paths, as requests arrive (before any answer)
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def data_answers(self) -> list[Answer]:
        """The answers of ``/data`` that carried a body with data (status 200)."""
        return [a for a in self.answers if a.path.startswith("/data") and a.status == 200]


@contextmanager
def recording_proxy(upstream: str) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream)
    thread = threading.Thread(target=proxy._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy._server.shutdown()
        proxy._server.server_close()
