"""``POST /predict`` as a pure ASGI lane, in front of the framework's per-request machinery.

FastAPI declares every route (OpenAPI, ``/docs``) and answers everything else; for the one hot
endpoint the lane answers first, with the same handler the FastAPI route calls, so both give
the same answer to the same body. What it skips is about ten layers of middleware, routing,
request objects and dependency solving: a third of serving's CPU per single-row request on
this project's benchmark (``bench/README.md``). Errors it does not handle itself propagate to
Starlette's outermost middleware, which answers 500 as for any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    """A JSON answer: status, encoded body, extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers),
        ]


#: (body, the client's X-Request-ID header or None) -> the answer
Handler = Callable[[bytes, str | None], Awaitable[Answer]]


class ClientDisconnectedError(Exception):
    """The client went away before its body arrived: nothing to answer."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body (ASGI delivers it in one or more messages)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """A request header's value (``name`` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class PredictLane:
    """ASGI middleware: ``POST {path}`` goes to ``handler``, everything else to ``app``.

    ``route`` is put in the scope as the router would, so the request metrics label the lane's
    requests with the route's path template, as they label the others.
    """

    def __init__(self, app: Any, *, path: str, handler: Handler, route: Any) -> None:
        self.app = app
        self.path = path
        self.handler = handler
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            body = await read_body(receive)
        except ClientDisconnectedError:
            return
        answer = await self.handler(body, header(scope, b"x-request-id"))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": answer.raw_headers(),
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
