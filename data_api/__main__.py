"""``python -m data_api [--host] [--port] [--seed] [--scale] [--min-interval] [--window-mode]
[--first-batch-number]``: run the server.

Flags override the ``DATA_API_*`` environment variables.
"""

from __future__ import annotations

import argparse

import uvicorn

from data_api.app import create_app
from data_api.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_api",
        description="Serve the Realtor data API simulator.",
        allow_abbrev=False,
    )
    parser.add_argument("--host", help="bind address (DATA_API_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (DATA_API_PORT, default 8090)")
    parser.add_argument("--seed", type=int, help="data seed (DATA_API_SEED, default 42)")
    parser.add_argument("--scale", type=float, help="row-count factor (DATA_API_SCALE, 1.0)")
    parser.add_argument(
        "--min-interval",
        type=float,
        dest="min_interval_seconds",
        help="seconds between cursor advances (DATA_API_MIN_INTERVAL_SECONDS, default 0)",
    )
    parser.add_argument(
        "--window-mode",
        choices=["repeat", "resample"],
        help="inside the interval: same bytes, or a new sample (DATA_API_WINDOW_MODE, repeat)",
    )
    parser.add_argument(
        "--first-batch-number",
        type=int,
        choices=[0, 1],
        help="batch_number of the first batch (DATA_API_FIRST_BATCH_NUMBER, default 1)",
    )
    return parser


def settings_from_args(argv: list[str] | None = None) -> Settings:
    """Settings from the environment, with the given command-line flags on top."""
    args = _parser().parse_args(argv)
    return Settings(**{k: v for k, v in vars(args).items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Run the server until interrupted; 0 on a clean shutdown."""
    settings = settings_from_args(argv)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
