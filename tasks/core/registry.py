"""The MLflow model registry, as the steps, serving and the UI use it.

The production model is the version carrying the alias ``production``; the deprecated
stage ``Production`` is also set for tools that still read stages. The newest version train
registered carries the alias ``challenger`` (serving scores live requests with it in shadow);
a promoted version keeps it: MLflow lets one version hold both aliases, and serving does not
shadow production with itself. Everything here talks to
the tracking server given by ``settings.mlflow_tracking_uri`` through an ``MlflowClient``.
:func:`champion` is the one lookup of the production model: None when there is none yet,
an exception when the registry cannot be asked (never a guess).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # MLflow takes about a second to import: only where a registry is asked
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

PRODUCTION_ALIAS = "production"
#: the alias train sets on the version it registers: the version serving shadows
CHALLENGER_ALIAS = "challenger"
PRODUCTION_STAGE = "Production"
ARCHIVED_STAGE = "Archived"
#: MLflow tag values are strings of at most 5,000 characters (8,000 on newer servers).
TAG_LIMIT = 5000


def client(tracking_uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def tag_value(value: Any) -> str:
    """A tag value: strings as they are, anything else as JSON, cut to the tag limit."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= TAG_LIMIT else text[: TAG_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Champion:
    """The registered model version carrying the production alias."""

    model_name: str
    version: str
    run_id: str | None


def champion(mlflow: MlflowClient, name: str, alias: str = PRODUCTION_ALIAS) -> Champion | None:
    """The version of ``name`` carrying ``alias``; None when the model or the alias does not
    exist yet (the first model). Any other failure (registry unreachable, a bad answer)
    raises: callers decide, nothing here guesses."""
    from mlflow.exceptions import MlflowException

    try:
        registered = mlflow.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = (registered.aliases or {}).get(alias)
    if version is None:
        return None
    found = mlflow.get_model_version(name, str(version))
    return Champion(model_name=name, version=str(found.version), run_id=found.run_id)


def champion_version(mlflow: MlflowClient, name: str) -> str | None:
    """The production version's number, or None when there is none yet."""
    found = champion(mlflow, name)
    return found.version if found is not None else None


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


def set_alias(mlflow: MlflowClient, name: str, alias: str, version: str) -> None:
    """Point ``alias`` of ``name`` at ``version`` (idempotent: setting it again changes nothing)."""
    mlflow.set_registered_model_alias(name, alias, str(version))


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
