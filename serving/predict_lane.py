"""``POST /predict`` as a pure ASGI lane, in front of the framework's per-request machinery.

FastAPI declares every route (OpenAPI, ``/docs``) and answers everything else; for the one hot
endpoint the lane answers first, with the same handler the FastAPI route calls, so both give
the same answer to the same body. What it skips is about ten layers of middleware, routing,
request objects and dependency solving: a third of serving's CPU per single-row request on
this project's benchmark (``bench/README.md``). Errors it does not handle itself propagate to
Starlette's outermost middleware, which answers 500 as for any route.

Before any work, :class:`Admission` refuses what is not a JSON body of a sane size: 415 for a
content type other than JSON, 413 when Content-Length says the body is over the cap, and 413 as
soon as a body sent without one (chunked) grows past it (:func:`read_body` stops reading there).
The FastAPI routes use the same object, so every endpoint refuses identically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: application/json, application/problem+json, ...; parameters (charset) allowed
JSON_CONTENT_TYPE = re.compile(r"^application/(?:[a-z0-9.+-]*\+)?json$")

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


class BodyTooLargeError(Exception):
    """The body grew past the cap while it was read (a chunked body, or a lying length)."""


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON. None (no header) counts as JSON: see serving/README."""
    if content_type is None:
        return True
    return bool(JSON_CONTENT_TYPE.match(content_type.partition(";")[0].strip().lower()))


@dataclass(frozen=True)
class Admission:
    """What a request body must be before any work: JSON, at most ``limit`` bytes."""

    limit: int
    setting: str  # the environment variable that sets ``limit``, named in the 413

    def check(self, content_type: str | None, content_length: str | None) -> Answer | None:
        """The refusal the headers alone decide (415, 413), or None to read the body."""
        if content_type is not None and not is_json(content_type):
            return refusal(
                415,
                f"Content-Type {content_type[:60]!r} is not accepted: send the body as JSON "
                "with 'Content-Type: application/json'",
            )
        if content_length is not None:
            try:
                length = int(content_length)
            except ValueError:
                return refusal(400, f"Content-Length {content_length[:30]!r} is not a number")
            if length > self.limit:
                return self.too_large()
        return None

    def too_large(self) -> Answer:
        return refusal(
            413,
            f"the body is larger than {self.limit:,} bytes ({self.setting}): "
            "send fewer records per request, or raise the setting",
        )


def refusal(status: int, message: str) -> Answer:
    """An error answer in the API's shape: ``{"detail": message}``."""
    return Answer(status, json.dumps({"detail": message}).encode())


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole request body (ASGI delivers it in one or more messages).

    Raises :class:`BodyTooLargeError` as soon as more than ``limit`` bytes arrived.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def admit(
    admission: Admission, content_type: str | None, content_length: str | None, receive: Receive
) -> bytes | Answer:
    """The body, or the refusal to answer instead (raises ClientDisconnectedError)."""
    refused = admission.check(content_type, content_length)
    if refused is not None:
        return refused
    try:
        return await read_body(receive, admission.limit)
    except BodyTooLargeError:
        return admission.too_large()


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

    def __init__(
        self, app: Any, *, path: str, handler: Handler, route: Any, admission: Admission
    ) -> None:
        self.app = app
        self.path = path
        self.handler = handler
        self.route = route
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            body = await admit(
                self.admission,
                header(scope, b"content-type"),
                header(scope, b"content-length"),
                receive,
            )
        except ClientDisconnectedError:
            return
        if isinstance(body, Answer):
            answer = body
        else:
            answer = await self.handler(body, header(scope, b"x-request-id"))
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": answer.raw_headers(),
            }
        )
        await send({"type": "http.response.body", "body": answer.body})
