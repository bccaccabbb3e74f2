"""The serving API as the UI reads it: one small httpx client with short timeouts.

Every failure becomes a :class:`ui.errors.SourceError` that says what to do: serving not
answering, no model loaded yet (503), a record refused (422, per field), anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ui.errors import InputRejectedError, NoModelError, ServingDownError, SourceError

CONNECT_TIMEOUT_SECONDS = 1.0
START_HINT = "start it with `make serve`, or point UI_SERVING_URL at a running serving"


@dataclass(frozen=True)
class OodWarning:
    """Serving's word that a feature of a record is outside what the model was trained on."""

    feature: str
    kind: str  # below_range, above_range, unseen_category
    value: Any
    range: tuple[float, float] | None
    message: str
    row: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> OodWarning:
        bounds = body.get("range")
        return cls(
            feature=str(body["feature"]),
            kind=str(body["kind"]),
            value=body.get("value"),
            range=None if bounds is None else (float(bounds[0]), float(bounds[1])),
            message=str(body.get("message", "")),
            row=int(body.get("row", 0)),
        )


@dataclass(frozen=True)
class Explanation:
    """The answer of ``POST /explain``: a price and why, in log1p(price) space."""

    model_name: str
    model_version: str
    price: float
    log_price: float
    base_value: float
    contributions: dict[str, float]
    features: dict[str, Any]
    request_id: str = ""
    space: str = "log1p(price)"
    #: out-of-distribution warnings; serving without them (no ``warnings`` key) means none
    warnings: tuple[OodWarning, ...] = ()

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Explanation:
        return cls(
            model_name=str(body["model_name"]),
            model_version=str(body["model_version"]),
            price=float(body["price"]),
            log_price=float(body["log_price"]),
            base_value=float(body["base_value"]),
            contributions={k: float(v) for k, v in dict(body["contributions"]).items()},
            features=dict(body.get("features") or {}),
            request_id=str(body.get("request_id", "")),
            space=str(body.get("space", "log1p(price)")),
            warnings=tuple(OodWarning.from_json(dict(w)) for w in body.get("warnings") or ()),
        )


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return body.get("detail", body) if isinstance(body, dict) else body


def field_errors(detail: Any) -> dict[str, str]:
    """FastAPI's 422 ``detail`` as {field: rule} (the last name in each ``loc``)."""
    errors: dict[str, str] = {}
    if not isinstance(detail, list):
        return {"record": str(detail)}
    for item in detail:
        if not isinstance(item, dict):
            continue
        names = [str(p) for p in item.get("loc", []) if isinstance(p, str) and p != "body"]
        errors[names[-1] if names else "record"] = str(item.get("msg", "invalid"))
    return errors


class ServingClient:
    """Calls to one serving base URL (``UI_SERVING_URL``)."""

    def __init__(self, base_url: str, timeout_seconds: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS),
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=payload)
        except httpx.TimeoutException as exc:
            kind = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "answering"
            raise ServingDownError(
                "serving",
                f"serving at {self.base_url} timed out {kind} ({path})",
                f"check that it is running and not overloaded; {START_HINT}",
            ) from exc
        except httpx.HTTPError as exc:
            raise ServingDownError(
                "serving",
                f"serving at {self.base_url} is not answering ({exc.__class__.__name__})",
                START_HINT,
            ) from exc
        if response.status_code == 503:
            raise NoModelError(
                "serving",
                f"serving at {self.base_url} has no model to answer with: {_detail(response)}",
                "train and promote a model first (`make demo`); serving picks it up by itself",
            )
        if response.status_code == 422:
            fields = field_errors(_detail(response))
            listed = "; ".join(f"{name}: {rule}" for name, rule in fields.items())
            raise InputRejectedError(
                f"serving refused the record: {listed}", "correct the field(s) named", fields
            )
        if response.status_code >= 400:
            raise SourceError(
                "serving",
                f"serving at {self.base_url} answered HTTP {response.status_code} to {path}: "
                f"{_detail(response)}",
                "see serving's log for the cause",
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceError(
                "serving",
                f"serving at {self.base_url} answered {path} with something other than JSON",
                "check that UI_SERVING_URL points at this project's serving",
            ) from exc
        if not isinstance(body, dict):
            raise SourceError(
                "serving",
                f"serving answered {path} with a JSON {type(body).__name__}, not an object",
                "check that UI_SERVING_URL points at this project's serving",
            )
        return body

    def explain(self, record: dict[str, Any]) -> Explanation:
        body = self._call("POST", "/explain", record)
        try:
            return Explanation.from_json(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                "serving",
                f"serving's /explain answer lacks or garbles {exc}",
                "serving and the UI disagree on the /explain contract: update both",
            ) from exc

    def predict(self, record: dict[str, Any]) -> tuple[float, str]:
        """(price, model version) of one record."""
        body = self._call("POST", "/predict", record)
        try:
            return float(body["prices"][0]), str(body["model_version"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SourceError(
                "serving",
                f"serving's /predict answer lacks or garbles {exc}",
                "serving and the UI disagree on the /predict contract: update both",
            ) from exc

    def model(self) -> dict[str, Any]:
        """``GET /model``: the model being served, its metrics and lineage."""
        return self._call("GET", "/model")
