"""The shapes of the service's answers (for the OpenAPI schema and the clients that read it)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.explain import SPACE
from serving.state import LoadedModel, LoadFailure, RegistryStatus

EXPLAIN_SPACE = SPACE


class InputWarning(BaseModel):
    """A value outside the served version's training data (see serving/ranges.py)."""

    row: int = Field(description="0-based index of the record (0 for a single object)")
    feature: str
    kind: Literal["below_range", "above_range", "unseen_category"]
    value: Any = Field(description="the value as the model read it")
    range: list[float] | None = Field(description="[min, max] seen in training; null: category")
    message: str


class PredictResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    prices: list[float] = Field(
        description="predicted prices in dollars, rounded to cents, one per record"
    )
    warnings: list[InputWarning] = Field(
        description="out-of-distribution values, only for records that have some"
    )


class ExplainResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    price: float = Field(description="the predicted price in dollars (= expm1(log_price))")
    log_price: float = Field(description="log1p of the predicted price")
    space: str = Field(EXPLAIN_SPACE, description="the space the contributions add up in")
    base_value: float = Field(description="the explainer's expected model output, log1p(price)")
    contributions: dict[str, float] = Field(
        description="SHAP value per input feature (one-hot levels and missing indicators "
        "summed into their feature); base_value + sum(contributions) = log_price"
    )
    features: dict[str, Any] = Field(description="the record's features, as the model read them")
    warnings: list[InputWarning] = Field(description="out-of-distribution values (row 0)")


class ErrorResponse(BaseModel):
    detail: Any


def refusals(too_large: str, unavailable: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers of a route that reads a JSON body: 413, 415, 422 and 503."""
    return {
        413: {"model": ErrorResponse, "description": too_large},
        415: {"model": ErrorResponse, "description": "the body is not sent as JSON"},
        422: {"model": ErrorResponse, "description": "a field breaks a rule: loc names it"},
        503: {"model": ErrorResponse, "description": unavailable},
    }


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its JSON itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _tag_json(value: str | None) -> Any:
    """A tag written as JSON (lists of reasons, batch ids); the raw text if it is not JSON."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def model_summary(model: LoadedModel) -> dict[str, Any]:
    """The short description used by /ready."""
    return {
        "name": model.name,
        "version": model.version,
        "fast_path": {"enabled": model.fast_path.enabled, "reason": model.fast_path.reason},
    }


def model_document(
    model: LoadedModel,
    registry: RegistryStatus,
    *,
    loading: str | None,
    last_failure: dict[str, Any] | None,
) -> dict[str, Any]:
    """The body of /model: what is served, where it came from, why it is in production."""
    tags = model.metadata.tags
    promoted = tags.get("promoted")
    return {
        "name": model.name,
        "version": model.version,
        "alias": model.alias,
        "run_id": model.metadata.run_id,
        "created_at": model.metadata.created_at,
        "loaded_at": model.loaded_at.isoformat(),
        "load_seconds": round(model.load_seconds, 3),
        "metrics": model.metadata.metrics,
        "training": {
            "batch_id": _tag_json(tags.get("batch_id")),
            "training_batch_ids": _tag_json(tags.get("training_batch_ids")),
            "reasons": _tag_json(tags.get("reasons")),
        },
        "promotion": {
            "promoted": None if promoted is None else promoted == "true",
            "promoted_at": tags.get("promoted_at"),
            "reasons": _tag_json(tags.get("promotion_reasons")),
        },
        "tags": tags,
        "fast_path": {
            "enabled": model.fast_path.enabled,
            "reason": model.fast_path.reason,
            "explain_enabled": model.fast_path.explain_enabled,
            "explain_reason": model.fast_path.explain_reason,
        },
        "preparation": model.preparation.as_dict(),
        "input_checks": {
            "enabled": model.ranges is not None,
            "reason": model.ranges_reason if model.ranges is None else None,
            "training_ranges": model.ranges.as_document() if model.ranges is not None else None,
        },
        "registry": registry.as_dict(),
        "loading": loading,
        "last_load_failure": last_failure,
    }


def challenger_document(
    alias: str, held: LoadedModel | None, failure: LoadFailure | None
) -> dict[str, Any]:
    """/model's ``challenger``: the version held for ``SERVING_CHALLENGER_ALIAS``, and how."""
    return {
        "alias": alias,
        "version": held.version if held is not None else None,
        "loaded_at": held.loaded_at.isoformat() if held is not None else None,
        "fast_path": held.fast_path.enabled if held is not None else None,
        "preparation": held.preparation.as_dict() if held is not None else None,
        "last_load_failure": (
            {"version": failure.version, "at": failure.at.isoformat(), "error": failure.error}
            if failure is not None
            else None
        ),
    }
