"""A tiny real HTTP server whose answers a test scripts: for responses the simulator never sends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[], tuple[int, bytes]]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = self.server.respond()  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", self.server.content_type)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class ScriptedServer:
    """Answers every GET with ``respond()``; change ``respond`` at any time."""

    def __init__(self, respond: Responder) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.respond = respond  # type: ignore[attr-defined]
        self._server.content_type = "application/json"  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def content_type(self) -> str:
        return self._server.content_type  # type: ignore[attr-defined]

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._server.content_type = value  # type: ignore[attr-defined]

    @property
    def respond(self) -> Responder:
        return self._server.respond  # type: ignore[attr-defined]

    @respond.setter
    def respond(self, respond: Responder) -> None:
        self._server.respond = respond  # type: ignore[attr-defined]


@contextmanager
def scripted_http(respond: Responder) -> Iterator[ScriptedServer]:
    """Serve on a free port of 127.0.0.1 for the ``with`` block."""
    server = ScriptedServer(respond)
    thread = threading.Thread(target=server._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()
        server._server.server_close()
