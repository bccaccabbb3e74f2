"""Fixtures shared by every test folder: real services, started here and stopped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.postgres import fresh_database
from tests.support.seaweed import S3Endpoint, seaweedfs
from tests.support.xdist_units import check_units, fail_outside_its_unit, make_scheduler

if TYPE_CHECKING:  # the Airflow env runs tests/dags with this conftest too: import lazily
    from tests.support.served_model import ServedStack, ServingProcess


#: mlflow.set_tracking_uri / set_registry_uri also write these to the environment
MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook (the Airflow env has no xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadscope``: whole work units per worker, the longest first
    (tests/support/xdist_units.py); any other ``--dist`` is xdist's own."""
    if config.getoption("dist") != "loadscope":
        return None
    return make_scheduler(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the units table must be complete
        check_units(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_outside_its_unit(item)  # before any fixture is built


@pytest.fixture(autouse=True, scope="module")
def _mlflow_uris_restored() -> Iterator[None]:
    """A module that points MLflow's fluent API at its own server must not send the task
    processes of later modules (which inherit the environment) to a server that is gone."""
    saved = {name: os.environ.get(name) for name in MLFLOW_URI_VARIABLES}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


#: MLflow 3's default store, made in the working directory by anything that reaches MLflow with
#: no tracking URI set: in the checkout it is a test talking to the wrong store (and, once, it
#: was committed)
STRAY_MLFLOW_STORE = Path(__file__).resolve().parents[1] / "mlflow.db"


@pytest.fixture(autouse=True, scope="module")
def _no_stray_mlflow_store() -> Iterator[None]:
    """No module leaves MLflow's default ``mlflow.db`` in the checkout (it names the module)."""
    existed = STRAY_MLFLOW_STORE.exists()
    yield
    if not existed and STRAY_MLFLOW_STORE.exists():
        STRAY_MLFLOW_STORE.unlink()
        pytest.fail(
            f"{STRAY_MLFLOW_STORE} appeared during this module (or one running beside it on the "
            "other xdist worker): something reached MLflow with no "
            "tracking URI (set MLFLOW_TRACKING_URI or mlflow.set_tracking_uri to the test's store)"
        )


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A SeaweedFS server for the whole session (buckets per test: see ``s3_bucket``)."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3: S3Endpoint) -> str:
    """A new, empty bucket on the session's SeaweedFS."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); skips off CI without a server."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(scope="session")
def served_stack(s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    """One model for the session's serving and UI tests: an MLflow server (PostgreSQL backend,
    artifacts on SeaweedFS), a PostgreSQL ledger, an S3 lake, and a model trained and promoted
    by the real ``tasks.train`` / ``tasks.promote`` command lines (3,000 rows)."""
    from tests.support.served_model import ServedStack, model_stack, train_and_promote

    with model_stack(s3, tmp_path_factory.mktemp("served")) as stack:
        first = train_and_promote(stack.env, rows=3000, seed=21, batch_number=1)
        assert first.promoted and first.model_version == "1", first
        yield ServedStack(stack, first)


@pytest.fixture(scope="session")
def serving(served_stack: ServedStack) -> Iterator[ServingProcess]:
    """``python -m serving`` on the session's stack: admin token set, export every second."""
    from tests.support.served_model import ADMIN_TOKEN, serving_process

    with serving_process(
        served_stack.stack.env,
        SERVING_ADMIN_TOKEN=ADMIN_TOKEN,
        SERVING_INFERENCE_EXPORT_INTERVAL_SECONDS="1",
        SERVING_INFERENCE_LOG_FLUSH_SECONDS="0.2",
        SERVING_MAX_BATCH_ROWS="50",
    ) as process:
        yield process
