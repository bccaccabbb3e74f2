"""The MLflow model registry, as the train and promote steps use it.

The production model is the version carrying the alias ``production``; the deprecated
stage ``Production`` is also set for tools that still read stages. Everything here talks to
the tracking server given by ``settings.mlflow_tracking_uri`` through an ``MlflowClient``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

PRODUCTION_ALIAS = "production"
PRODUCTION_STAGE = "Production"
ARCHIVED_STAGE = "Archived"
#: MLflow tag values are strings of at most 5,000 characters (8,000 on newer servers).
TAG_LIMIT = 5000


def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def tag_value(value: Any) -> str:
    """A tag value: strings as they are, anything else as JSON, cut to the tag limit."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= TAG_LIMIT else text[: TAG_LIMIT - 3] + "..."


def alias_version(mlflow: MlflowClient, name: str, alias: str = PRODUCTION_ALIAS) -> str | None:
    """The version carrying ``alias`` (None if the model or the alias does not exist yet)."""
    try:
        return str(mlflow.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def get_version(mlflow: MlflowClient, name: str, version: str) -> ModelVersion:
    return mlflow.get_model_version(name, str(version))


def versions_tagged(mlflow: MlflowClient, name: str, key: str, value: str) -> list[ModelVersion]:
    """Versions of ``name`` whose tag ``key`` equals ``value`` (oldest first)."""
    found = mlflow.search_model_versions(f"name = '{name}' and tags.`{key}` = '{value}'")
    return sorted(found, key=lambda v: int(v.version))


def count_versions(mlflow: MlflowClient, name: str) -> int:
    return len(mlflow.search_model_versions(f"name = '{name}'"))


def set_version_tags(
    mlflow: MlflowClient, name: str, version: str, tags: Mapping[str, Any]
) -> None:
    for key, value in tags.items():
        mlflow.set_model_version_tag(name, str(version), key, tag_value(value))


def make_production(mlflow: MlflowClient, name: str, version: str) -> None:
    """Move the alias to ``version``, set its stage Production and archive the former ones.

    The archiving is done version by version rather than with
    ``archive_existing_versions=True``: with a PostgreSQL backend store (psycopg 3) MLflow 3.17's
    server compares the integer version column with a VARCHAR there and answers HTTP 400
    (mlflow/mlflow#24592). The outcome is the same: one version in Production.
    """
    mlflow.set_registered_model_alias(name, PRODUCTION_ALIAS, str(version))
    with warnings.catch_warnings():
        # stages are deprecated since MLflow 2.9; still set for tools that read them
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        mlflow.transition_model_version_stage(
            name, str(version), PRODUCTION_STAGE, archive_existing_versions=False
        )
        for other in mlflow.search_model_versions(f"name = '{name}'"):
            if str(other.version) != str(version) and other.current_stage == PRODUCTION_STAGE:
                mlflow.transition_model_version_stage(name, str(other.version), ARCHIVED_STAGE)


def model_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"
