"""Versions prepared off the request path (issue 21), against a real MLflow server.

- the shared-memory form gives the same bytes as the model it was made from, and a dropped one
  leaves no cyclic garbage (so a swap need not run a full collection) and no mapping;
- a version prepared in a worker answers /predict and /explain with the same bytes as one
  prepared in the serving process (two real services, one with SERVING_PREPARE_IN_WORKER=false);
- swaps in a worker leave no prepared file behind, and the served process maps only the
  version it serves;
- a worker killed mid-preparation, or a version that fails in the worker: the previous version
  keeps serving, and it is counted and said;
- when the prepared form cannot be handed over, the version is prepared in the serving process,
  loudly (metric, /model's ``preparation``).
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bench.payloads import realistic_records
from serving.loader import configure_mlflow, load_version
from serving.metrics import ServingMetrics
from serving.prepared import FILE_PREFIX, map_prepared, new_path, write_prepared
from serving.settings import ServingSettings
from serving.state import LoadedModel
from tests.support.served_model import (
    ModelStack,
    ServedStack,
    ServingProcess,
    copy_version,
    serving_process,
    set_alias,
)

RECORDS = realistic_records(60)


def on_the_stack(test):
    """The marks of a test on the real registry (PostgreSQL, S3, slow)."""
    return pytest.mark.postgres(pytest.mark.s3(pytest.mark.slow(test)))


def leftovers(directory: Path, pid: int | None = None) -> list[str]:
    """Prepared files left in ``directory`` (only those of process ``pid``, if given: the
    module's two services go on preparing whatever the tests point the alias at, and a file of
    theirs still being written is not this process's leftover)."""
    prefix = FILE_PREFIX if pid is None else f"{FILE_PREFIX}{pid}-"
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(prefix))


def mapped_prepared_files(pid: int) -> int:
    """How many prepared files the process ``pid`` has mapped now."""
    with open(f"/proc/{pid}/maps") as maps:
        return sum(FILE_PREFIX in line for line in maps)


def canonical(records: list[dict]) -> list[dict]:
    from serving.records import Record

    return [Record.model_validate(r).features() for r in records]


# ------------------------------------------------------------------ the shared form, no registry


def test_the_shared_form_answers_the_same_bytes_and_leaves_nothing(
    local_model: LoadedModel, tmp_path: Path
):
    from serving.fast_model import records_to_columns

    handed = replace(local_model, native=None)
    path = new_path(tmp_path, handed.version)
    manifest = write_prepared(handed, path)
    assert manifest.shared_bytes > 100_000  # the trees' arrays went out of band
    gc.collect()
    gc.disable()
    try:
        mapped = map_prepared(path, manifest)
        assert leftovers(tmp_path) == []  # the name is gone as soon as it is mapped
        assert mapped_prepared_files(os.getpid()) == 1
        records = canonical(RECORDS)
        assert mapped.predict(records).tobytes() == local_model.predict(records).tobytes()
        assert mapped.predict(records[:3]).tobytes() == local_model.predict(records[:3]).tobytes()
        first = records_to_columns(records[:1])
        assert [e.as_dict() for e in mapped.explainer.explain(first)] == [
            e.as_dict() for e in local_model.explainer.explain(first)
        ]
        assert not mapped.fast.regressor._predictors[0][0].nodes.flags.writeable  # read-only
        del mapped
        # freed by reference counting alone: no cycle for a full collection to find...
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert mapped_prepared_files(os.getpid()) == 0  # ...and its memory unmapped


# ------------------------------------------------------------------ against the registry


@dataclass(frozen=True)
class Versions:
    stack: ModelStack
    name: str
    numbers: tuple[str, ...]
    shm: Path  # this module's own directory for prepared files


@pytest.fixture(scope="module")
def versions(served_stack: ServedStack, tmp_path_factory) -> Iterator[Versions]:
    stack = served_stack.stack
    name = f"realtor-prep-{uuid.uuid4().hex[:6]}"
    numbers = tuple(copy_version(stack.tracking_uri, stack.model_name, "1", name) for _ in range(4))
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path_factory.mktemp("shm")
    shm = shm / f"realtor-test-{uuid.uuid4().hex[:8]}"
    shm.mkdir()
    set_alias(stack.tracking_uri, name, numbers[0])
    yield Versions(stack, name, numbers, shm)
    assert leftovers(shm) == []
    shm.rmdir()


def settings_for(versions: Versions, **extra) -> ServingSettings:
    given = {"prepare_dir": str(versions.shm), "prepare_nice": 0, **extra}  # TEST_PREPARATION
    return ServingSettings(
        mlflow_tracking_uri=versions.stack.tracking_uri, model_name=versions.name, **given
    )


@pytest.fixture(scope="module")
def services(versions: Versions) -> Iterator[tuple[ServingProcess, ServingProcess]]:
    """The same model served twice: prepared in a worker, and in the serving process."""
    common = {"MODEL_NAME": versions.name, "SERVING_POLL_INTERVAL_SECONDS": "0.5"}
    with (
        serving_process(
            versions.stack.env, SERVING_PREPARE_DIR=str(versions.shm), **common
        ) as worker,
        serving_process(versions.stack.env, SERVING_PREPARE_IN_WORKER="false", **common) as local,
    ):
        yield worker, local


@on_the_stack
def test_a_worker_prepared_version_answers_the_same_bytes(services):
    worker, local = services
    assert worker.get("/model").json()["preparation"]["where"] == "worker"
    assert local.get("/model").json()["preparation"]["where"] == "serving_process"
    for body in (RECORDS, RECORDS[:1], RECORDS[0]):
        a, b = worker.post("/predict", json=body), local.post("/predict", json=body)
        assert a.status_code == b.status_code == 200
        a_doc, b_doc = a.json(), b.json()
        assert a_doc.pop("request_id") != b_doc.pop("request_id")
        assert a_doc == b_doc
        # byte for byte: the same body once the request id is put back
        assert a.content.replace(a.json()["request_id"].encode(), b"ID") == b.content.replace(
            b.json()["request_id"].encode(), b"ID"
        )
    a, b = worker.post("/explain", json=RECORDS[1]), local.post("/explain", json=RECORDS[1])
    assert a.status_code == b.status_code == 200
    assert a.content.replace(a.json()["request_id"].encode(), b"ID") == b.content.replace(
        b.json()["request_id"].encode(), b"ID"
    )


@on_the_stack
def test_swaps_leave_no_prepared_file_and_keep_one_mapping(services, versions: Versions):
    worker, _ = services
    pid = worker.process.pid
    for number in (versions.numbers[1], versions.numbers[2], versions.numbers[0]):
        set_alias(versions.stack.tracking_uri, versions.name, number)
        deadline = time.monotonic() + 120
        while worker.get("/model").json()["version"] != number:
            assert time.monotonic() < deadline, f"v{number} not served within 120 s"
            time.sleep(0.2)
        model = worker.get("/model").json()
        assert model["preparation"]["where"] == "worker", model["preparation"]
        assert model["preparation"]["handover_ms"] < model["load_seconds"] * 1000
        assert worker.post("/predict", json=RECORDS[0]).json()["model_version"] == number
    assert leftovers(versions.shm) == []
    deadline = time.monotonic() + 10
    while mapped_prepared_files(pid) != 1:  # the replaced versions' memory is unmapped
        assert time.monotonic() < deadline, f"{mapped_prepared_files(pid)} prepared files mapped"
        time.sleep(0.1)
    metrics = worker.get("/metrics").text
    assert 'realtor_model_preparations_total{where="worker"} 4.0' in metrics
    assert "realtor_model_preparation_fallbacks_total 0.0" in metrics
    assert "realtor_model_prepared_in_worker 1.0" in metrics


def watcher_on(versions: Versions, metrics: ServingMetrics, **extra):
    from serving.watcher import ModelWatcher
    from tasks.core import registry

    settings = settings_for(versions, **extra)
    configure_mlflow(settings)
    watcher = ModelWatcher(settings, metrics)
    watcher._client = registry.client(settings.mlflow_tracking_uri)
    return watcher


@on_the_stack
def test_a_worker_killed_mid_preparation_keeps_the_previous_version(versions: Versions):
    metrics = ServingMetrics()
    watcher = watcher_on(versions, metrics, load_retry_seconds=0, prepare_nice=5)
    set_alias(versions.stack.tracking_uri, versions.name, versions.numbers[0])
    assert watcher.poll()["outcome"] == "loaded"
    set_alias(versions.stack.tracking_uri, versions.name, versions.numbers[3])
    outcome: dict = {}
    polling = threading.Thread(target=lambda: outcome.update(watcher.poll()))
    polling.start()
    deadline = time.monotonic() + 30
    while (pid := watcher.preparer.worker_pid) is None:
        assert time.monotonic() < deadline and polling.is_alive(), "no worker started"
        time.sleep(0.01)
    while _nice(pid) != 5:  # SERVING_PREPARE_NICE: the worker lowers its own priority first
        assert time.monotonic() < deadline, f"the worker runs at niceness {_nice(pid)}, not 5"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    polling.join(60)
    assert outcome["outcome"] == "load_failed", outcome
    assert "died (killed by SIGKILL)" in outcome["reason"]
    assert watcher.current is not None and watcher.current.version == versions.numbers[0]
    assert watcher.last_failure is not None and watcher.last_failure.version == versions.numbers[3]
    assert metrics.preparation_worker_failures.labels("died")._value.get() == 1
    assert metrics.reload_failures._value.get() == 1
    assert leftovers(versions.shm, os.getpid()) == []
    # the next poll tries again, and a new worker hands the version over
    assert watcher.poll()["outcome"] == "loaded"
    assert watcher.current.version == versions.numbers[3]
    assert watcher.current.preparation.worker_pid not in (None, pid)
    watcher.stop()
    set_alias(versions.stack.tracking_uri, versions.name, versions.numbers[0])


@on_the_stack
def test_a_version_that_fails_in_the_worker_is_not_loaded_in_process(versions: Versions):
    from serving.preparation import PreparationError, Preparer

    metrics = ServingMetrics()
    preparer = Preparer(settings_for(versions), metrics)
    with pytest.raises(PreparationError, match="999") as raised:
        preparer.prepare(versions.name, "999", "production")
    print(f"\nthe worker's error: {raised.value}")
    assert metrics.preparation_fallbacks._value.get() == 0
    assert metrics.preparations.labels("serving_process")._value.get() == 0
    assert leftovers(versions.shm, os.getpid()) == []


@on_the_stack
def test_no_hand_over_possible_falls_back_to_the_serving_process_loudly(
    versions: Versions, tmp_path: Path
):
    from serving.preparation import Preparer
    from serving.responses import model_document
    from serving.state import RegistryStatus

    blocked = tmp_path / "a-file-not-a-directory"
    blocked.write_text("")
    metrics = ServingMetrics()
    preparer = Preparer(settings_for(versions, prepare_dir=str(blocked)), metrics)
    loaded = preparer.prepare(versions.name, versions.numbers[0], "production")
    assert loaded.preparation.where == "serving_process"
    assert "could not hand it over" in (loaded.preparation.reason or "")
    assert metrics.preparation_fallbacks._value.get() == 1
    assert metrics.preparations.labels("serving_process")._value.get() == 1
    document = model_document(loaded, RegistryStatus(), loading=None, last_failure=None)
    assert document["preparation"]["where"] == "serving_process"
    assert loaded.native is not None and loaded.fast_path.enabled
    # what the fallback serves is what an in-process load serves
    from tasks.core import registry

    client = registry.client(versions.stack.tracking_uri)
    reference = load_version(client, versions.name, versions.numbers[0], "production")
    records = canonical(RECORDS)
    assert loaded.predict(records).tobytes() == reference.predict(records).tobytes()


@on_the_stack
def test_one_kept_worker_prepares_every_version_with_the_same_bytes(versions: Versions):
    from serving.preparation import Preparer
    from tasks.core import registry

    metrics = ServingMetrics()
    preparer = Preparer(settings_for(versions), metrics)
    try:
        first = preparer.prepare(versions.name, versions.numbers[1], "production")
        second = preparer.prepare(versions.name, versions.numbers[2], "production")
        assert preparer.worker_pid is None  # between versions nothing is being prepared...
        pid = first.preparation.worker_pid
        assert pid is not None and _state(pid) != "Z"  # ...but the worker is kept, alive
    finally:
        preparer.close()
    assert first.preparation.where == second.preparation.where == "worker"
    assert second.preparation.worker_pid == pid  # the same process prepared both
    assert first.preparation.worker_cpu_seconds > 0 and second.preparation.worker_cpu_seconds > 0
    assert first.native is None  # the fast path serves: the registered model stayed there
    configure_mlflow(settings_for(versions))  # the in-process reference load's registry
    reference = load_version(
        registry.client(versions.stack.tracking_uri), versions.name, versions.numbers[1], "x"
    )
    records = canonical(RECORDS)
    assert first.predict(records).tobytes() == reference.predict(records).tobytes()
    assert second.predict(records).tobytes() == reference.predict(records).tobytes()
    assert metrics.preparations.labels("worker")._value.get() == 2
    samples = {s.name: s.value for s in metrics.preparation_cpu_seconds.collect()[0].samples}
    assert samples["realtor_model_preparation_cpu_seconds_count"] == 2
    _gone(pid)  # closing the preparer ends its worker
    assert leftovers(versions.shm, os.getpid()) == []


@on_the_stack
def test_a_worker_gone_between_versions_is_replaced_and_counted(versions: Versions):
    from serving.preparation import Preparer

    metrics = ServingMetrics()
    preparer = Preparer(settings_for(versions), metrics)
    try:
        first = preparer.prepare(versions.name, versions.numbers[1], "production")
        os.kill(first.preparation.worker_pid, signal.SIGKILL)  # say, the OOM killer
        preparer._worker.process.join(30)  # gone for good (not merely a zombie leader)
        second = preparer.prepare(versions.name, versions.numbers[2], "production")
    finally:
        preparer.close()
    assert second.preparation.where == "worker"
    assert second.preparation.worker_pid not in (None, first.preparation.worker_pid)
    assert metrics.preparation_worker_failures.labels("died")._value.get() == 1
    assert metrics.preparation_fallbacks._value.get() == 0


@on_the_stack
def test_the_worker_ends_itself_when_serving_is_gone(versions: Versions):
    """Serving killed outright closes its end of the pipe: the worker leaves, nothing orphaned."""
    from serving.preparation import Preparer

    preparer = Preparer(settings_for(versions), ServingMetrics())
    loaded = preparer.prepare(versions.name, versions.numbers[1], "production")
    worker = preparer._worker
    assert worker is not None and worker.pid == loaded.preparation.worker_pid
    worker.connection.close()  # what the kernel does to every descriptor of a killed process
    worker.process.join(30)
    assert worker.process.exitcode == 0  # it left by itself, not killed
    preparer.close()


@on_the_stack
def test_the_challenger_alias_is_prepared_the_same_way_and_held(versions: Versions):
    from serving.responses import challenger_document

    metrics = ServingMetrics()
    watcher = watcher_on(versions, metrics, challenger_alias="challenger")
    set_alias(versions.stack.tracking_uri, versions.name, versions.numbers[0])
    set_alias(versions.stack.tracking_uri, versions.name, versions.numbers[2], "challenger")
    try:
        outcome = watcher.poll()
        assert outcome["outcome"] == "loaded" and outcome["challenger"]["outcome"] == "loaded"
        assert watcher.current.version == versions.numbers[0]
        assert watcher.challenger.version == versions.numbers[2]
        assert watcher.challenger.preparation.where == "worker"
        assert watcher.poll()["challenger"] == {"outcome": "keep", "held": versions.numbers[2]}
        document = challenger_document("challenger", watcher.challenger, None)
        assert document["version"] == versions.numbers[2]
        assert document["preparation"]["where"] == "worker"
        records = canonical(RECORDS)
        assert (
            watcher.challenger.predict(records).tobytes()
            == watcher.current.predict(records).tobytes()  # the same artifacts, copied
        )
    finally:
        watcher.stop()
        versions.stack.client().delete_registered_model_alias(versions.name, "challenger")
    assert leftovers(versions.shm, os.getpid()) == []


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _gone(pid: int, seconds: float = 30.0) -> None:
    """Wait until process ``pid`` has ended (gone, or a zombie its parent has not reaped)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if _state(pid) == "Z":
                return
        except FileNotFoundError:
            return
        assert time.monotonic() < deadline, f"process {pid} still running after {seconds:g} s"
        time.sleep(0.05)


def test_a_duty_cycled_worker_is_stopped_part_of_the_time_and_continued():
    """SERVING_PREPARE_DUTY_CYCLE=0.3 on a real busy process: each pause stops it (state T in
    /proc) for 70 ms of the 100, then continues it; release always leaves it running. The
    Preparer waits through the same object (``DutyCycle`` in ``_wait``), so a prepared
    version's bytes cannot change (the worker is only stopped and continued)."""
    import subprocess
    import sys

    from serving.preparation import DutyCycle

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        duty = DutyCycle(busy.pid, 0.3)
        assert duty.run_seconds == pytest.approx(0.03) and duty.stop_seconds == pytest.approx(0.07)
        seen: set[str] = set()
        pausing = threading.Thread(target=lambda: [duty.pause() for _ in range(5)])
        pausing.start()
        while pausing.is_alive():
            seen.add(_state(busy.pid))
            time.sleep(0.005)
        pausing.join()
        assert "T" in seen, seen  # stopped part of the time
        assert _state(busy.pid) in ("R", "S"), "continued after each pause"
        os.kill(busy.pid, signal.SIGSTOP)
        duty.release()  # a worker is never left stopped
        time.sleep(0.05)
        assert _state(busy.pid) in ("R", "S")
        assert DutyCycle(busy.pid, 1.0).stop_seconds == 0  # the default: never stopped
    finally:
        busy.kill()
        busy.wait(10)
