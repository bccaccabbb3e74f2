"""A served model for tests: real MLflow, real train/promote command lines, real serving.

Building blocks (stable API; the serving and UI tests both use them):

- :func:`model_stack`: an MLflow server (PostgreSQL backend store, artifacts on SeaweedFS), a
  fresh PostgreSQL ledger and an S3 lake bucket; yields a :class:`ModelStack` whose ``env``
  holds every variable a task and the service read.
- :func:`train_and_promote`: a curated batch (``tests.tasks.train_factories``), then the
  REAL ``python -m tasks.train`` and ``python -m tasks.promote`` command lines on it.
- :func:`copy_version` / :func:`set_alias`: a second registered version of a trained model
  (same artifacts), and moving an alias, without training again.
- :func:`serving_process`: ``python -m serving`` on a free port, waited for until ``/ready``
  answers 200 (or only ``/health``, with ``wait_ready=False``); yields a :class:`ServingProcess`.

Typical use::

    with model_stack(s3, tmp) as stack:
        trained = train_and_promote(stack.env, rows=3000, seed=21, batch_number=1)
        with serving_process(stack.env) as served:
            httpx.post(f"{served.url}/predict", json={"state": "Texas"})
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import fresh_database
from tests.support.processes import free_port, start_process, stop_process, wait_http
from tests.support.seaweed import S3Endpoint
from tests.support.steps import run_step_ok

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = "realtor-price-test"


@dataclass(frozen=True)
class ModelStack:
    """The stores of one test model's life, and the environment that names them."""

    env: dict[str, str]
    tracking_uri: str
    ledger_url: str
    storage_url: str
    model_name: str
    workdir: Path
    backend_store_uri: str
    artifacts_bucket: str

    def client(self):  # mlflow.tracking.MlflowClient (imported lazily: slow to import)
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)


@dataclass(frozen=True)
class TrainedVersion:
    """What train and promote said about one batch."""

    batch_id: int
    model_version: str
    run_id: str
    promoted: bool
    train: dict = field(repr=False)
    promote: dict = field(repr=False)


def stack_env(
    *,
    tracking_uri: str,
    ledger_url: str,
    storage_url: str,
    s3: S3Endpoint,
    model_name: str,
    workdir: Path,
) -> dict[str, str]:
    """Every variable the tasks and serving read, for one stack (small training budget)."""
    return {
        **s3.env(),
        "LEDGER_URL": ledger_url,
        "STORAGE_URL": storage_url,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MODEL_NAME": model_name,
        "XCOM_RETURN_PATH": str(workdir / "xcom" / "return.json"),
        "TRAIN_TIME_BUDGET_SECONDS": "3",
        "TRAIN_MAX_TRIALS": "1",
        "TRAIN_THREADS": "1",
        "RANDOM_SEED": "11",
        "LOG_FORMAT": "json",
        "SERVING_LOG_FORMAT": "json",
    }


@contextmanager
def model_stack(
    s3: S3Endpoint, workdir: Path, *, model_name: str = DEFAULT_MODEL
) -> Iterator[ModelStack]:
    """MLflow server + ledger database + lake bucket, for the ``with`` block."""
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:8]
    bucket, artifacts = f"lake-{suffix}", f"mlflow-{suffix}"
    s3.create_bucket(bucket)
    with (
        fresh_database("mlflow_served") as backend,
        fresh_database("ledger_served") as ledger_url,
        mlflow_server(backend, s3, workdir, artifacts_bucket=artifacts) as uri,
    ):
        env = stack_env(
            tracking_uri=uri,
            ledger_url=ledger_url,
            storage_url=f"s3://{bucket}",
            s3=s3,
            model_name=model_name,
            workdir=workdir,
        )
        yield ModelStack(
            env, uri, ledger_url, f"s3://{bucket}", model_name, workdir, backend, artifacts
        )


def run_task(step: str, batch_id: int, env: dict[str, str], **extra: str) -> dict:
    """``python -m tasks.<step> --batch-id N``; its XCom result (AssertionError on failure)."""
    # 600 s, as the story's tasks: a train starved of CPU by other work
    return run_step_ok(step, {**env, **extra}, "--batch-id", str(batch_id)).result


def put_curated_batch(
    env: dict[str, str], rows: int, *, seed: int, batch_number: int, group_number: int = 1
) -> int:
    """A curated batch of ``rows`` synthetic rows in the ledger and lake that ``env`` names, as
    validate and drift_check leave one (decision ``train``); its batch id."""
    from tasks.core.ledger import Ledger
    from tasks.core.settings import TaskSettings
    from tasks.core.storage import open_store
    from tests.tasks.train_factories import curated_batch, make_rows

    settings = TaskSettings(
        ledger_url=env["LEDGER_URL"],
        storage_url=env["STORAGE_URL"],
        s3_endpoint_url=env.get("S3_ENDPOINT_URL"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )
    ledger = Ledger.open(settings.ledger_url)
    try:
        store = open_store(settings.storage_url, settings)
        batch = curated_batch(
            store,
            ledger,
            make_rows(rows, seed=seed),
            batch_number=batch_number,
            group_number=group_number,
        )
    finally:
        ledger.engine.dispose()
    return int(batch.id)


def train_and_promote(
    env: dict[str, str],
    *,
    rows: int = 3000,
    seed: int = 21,
    batch_number: int = 1,
    promote: bool = True,
    **extra: str,
) -> TrainedVersion:
    """A curated batch of ``rows`` synthetic rows, trained (and promoted) by the real steps.

    ``batch_number`` must be new for the stack's ledger; ``extra`` overrides task variables
    (e.g. ``TRAIN_WINDOW_BATCHES="1"``). With ``promote=False`` only train runs.
    """
    batch_id = put_curated_batch(env, rows, seed=seed, batch_number=batch_number)
    trained = run_task("train", batch_id, env, **extra)
    promoted = run_task("promote", batch_id, env, **extra) if promote else {}
    return TrainedVersion(
        batch_id=batch_id,
        model_version=str(trained["model_version"]),
        run_id=trained["run_id"],
        promoted=bool(promoted.get("promoted", False)),
        train=trained,
        promote=promoted,
    )


def copy_version(tracking_uri: str, source_name: str, version: str, target_name: str) -> str:
    """Register the artifacts of ``source_name`` v``version`` as a new version of
    ``target_name`` (created if needed), with the same tags; the new version's number."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    source = client.get_model_version(source_name, version)
    try:
        client.create_registered_model(target_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    created = client.create_model_version(
        target_name,
        source.source,
        run_id=source.run_id,
        tags=dict(source.tags or {}),
        model_id=_logged_model_id(source),
    )
    return str(created.version)


def _logged_model_id(version) -> str | None:
    """The logged model behind a version (MLflow 3 sources read ``models:/m-<id>``)."""
    found = getattr(version, "model_id", None)
    if found:
        return found
    source = str(version.source or "")
    if source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/", 1)[0]
    return None


def set_alias(tracking_uri: str, name: str, version: str, alias: str = "production") -> None:
    """Move ``alias`` of ``name`` to ``version`` (what promote does, minus its checks)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, str(version)
    )


@dataclass
class ServingProcess:
    """A running ``python -m serving``: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=kwargs.pop("timeout", 10.0), **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=kwargs.pop("timeout", 30.0), **kwargs)


#: The preparation worker at the serving process's own priority in tests: at the default
#: niceness (10) it gets about a tenth of a core beside a busy machine's other work (a CPU hog,
#: the other xdist worker), and the preparation tests took three times as long there (160-200 s
#: each, against 50-60 s on a quiet machine). What the tests check of a worker (the same bytes, a
#: kill, a fallback, the hand-over) does not depend on its priority; one test sets a niceness and
#: sees the worker take it.
TEST_PREPARATION = {"SERVING_PREPARE_NICE": "0"}


@contextmanager
def serving_process(
    env: dict[str, str],
    *,
    wait_ready: bool = True,
    timeout: float = 120.0,
    log_path: Path | None = None,
    **extra: str,
) -> Iterator[ServingProcess]:
    """Start ``python -m serving --port <free>`` with ``env`` (+ ``extra``); wait for /ready
    (200) or, with ``wait_ready=False``, for /health; stop it after the ``with`` block."""
    port = free_port()
    merged = {"SERVING_POLL_INTERVAL_SECONDS": "1", **TEST_PREPARATION, **env, **extra}
    if log_path is None:
        base = Path(merged.get("XCOM_RETURN_PATH", "/tmp/serving/x")).parent.parent
        log_path = base / f"serving-{port}.log"
    process = start_process(
        [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(port)],
        log_path=log_path,
        env=merged,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(
            f"{url}/ready" if wait_ready else f"{url}/health",
            process,
            log_path=log_path,
            timeout=timeout,
        )
        yield ServingProcess(url, process, log_path)
    finally:
        stop_process(process)


#: the admin token of the session's shared serving (tests only)
ADMIN_TOKEN = "test-admin-token-for-tests-only"


@dataclass(frozen=True)
class ServedStack:
    """The session's shared stack and the first version trained and promoted on it."""

    stack: ModelStack
    first: TrainedVersion
