"""``python -m serving [--host] [--port]``: run the inference service (uvicorn, one worker).

Flags override ``SERVING_HOST`` / ``SERVING_PORT``. One worker per process: the deployment
scales by replicas (uvicorn's ``--workers`` above 1 leaves Nagle on: uvicorn issue 3149).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from serving.app import create_app
from serving.settings import ServingSettings

#: Seconds a thread may hold the GIL while another waits (Python's default is 0.005). The event
#: loop shares the GIL with the predict worker and the inference-log writer; a shorter interval
#: keeps a request from waiting up to 5 ms for a background thread's turn to end (tail latency).
GIL_SWITCH_INTERVAL = 0.001


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving", description="Serve the Realtor price model in production."
    )
    parser.add_argument("--host", help="bind address (SERVING_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (SERVING_PORT, default 8000)")
    return parser


def settings_from_args(argv: list[str] | None = None) -> ServingSettings:
    """Settings from the environment, with the given command-line flags on top."""
    args = _parser().parse_args(argv)
    return ServingSettings(**{k: v for k, v in vars(args).items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted; 0 on a clean shutdown."""
    settings = settings_from_args(argv)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        # By name, not "auto": a missing C parser or loop fails the start instead of silently
        # costing twice the CPU per request (h11 and asyncio's pure-Python loop).
        http="httptools",
        loop="uvloop",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
