"""A light closed-loop HTTP/1.1 load generator: keep-alive sockets, requests encoded once.

A general-purpose client (httpx) spends about 1 ms of CPU per request, as much as the service it
measures; on a 2-core machine the client then decides the latency it reports. This one sends
pre-encoded ``POST`` requests over persistent connections and reads each answer's status line,
headers and ``Content-Length`` body (a chunked or unframed answer is an error: it would need a
real client), so its own cost stays in the tens of microseconds.

``run(...)`` returns, for the measured window only: each answered request's latency, the
number of non-200 answers and transport errors, and the client's CPU seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ProtocolError(RuntimeError):
    """An answer this client cannot frame (no Content-Length, chunked, or a broken line)."""


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    first_error: str | None = None


def encode_post(url: str, path: str, body: bytes) -> bytes:
    """One keep-alive ``POST`` with a JSON body, as bytes on the wire."""
    host = urlsplit(url).netloc
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status code and body of one HTTP/1.1 answer framed by ``Content-Length``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            raise ProtocolError("a chunked answer: this client reads Content-Length bodies only")
    if length is None:
        raise ProtocolError("an answer without Content-Length")
    return int(parts[1]), await reader.readexactly(length)


async def run(
    url: str,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    """``connections`` loops, each sending its next request as soon as the last one answered."""
    split = urlsplit(url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    result = LoadResult()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    cpu_at_start: list[float] = []

    async def loop(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        k = index
        try:
            while True:
                request = requests[k % len(requests)]
                k += connections
                sent = time.perf_counter()
                if sent >= stop_at:
                    return
                if sent >= measure_from and not cpu_at_start:
                    cpu_at_start.append(time.process_time())
                try:
                    writer.write(request)
                    status, _ = await read_answer(reader)
                    error = None if status == 200 else f"HTTP {status}"
                except (OSError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                done = time.perf_counter()
                if sent >= measure_from:
                    result.requests += 1
                    if error is None:
                        result.latencies.append(done - sent)
                    else:
                        result.errors += 1
                        result.first_error = result.first_error or error
                if error is not None and not error.startswith("HTTP"):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(loop(i) for i in range(connections)))
    result.seconds = time.perf_counter() - measure_from
    result.client_cpu = time.process_time() - (cpu_at_start[0] if cpu_at_start else 0.0)
    return result
