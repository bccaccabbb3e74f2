"""How every route answers: JSON bodies, request ids, prices in cents."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import numpy as np
from fastapi.responses import Response

from serving.predict_lane import Answer

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def answer(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Answer:
    encoded = json.dumps(body, allow_nan=False, default=str).encode()
    return Answer(status_code, encoded, tuple((headers or {}).items()))


def response(given: Answer) -> Response:
    return Response(
        given.body,
        status_code=given.status,
        media_type="application/json",
        headers=dict(given.headers),
    )


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return response(answer(body, status_code, headers))


def request_id(given: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else a new one."""
    return given if given and REQUEST_ID.match(given) else uuid.uuid4().hex


def cents(prices: np.ndarray) -> list[float]:
    """Prices in dollars rounded to cents, by one rule wherever a price leaves the service
    (answers of the fast path and the reference path, the inference log): Python's ``round``,
    correctly rounded, 0.6 us for one price where ``np.round`` takes 3 us."""
    return [round(price, 2) for price in np.asarray(prices, dtype=np.float64).tolist()]
