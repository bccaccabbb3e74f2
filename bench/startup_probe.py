"""Run one task's command line with markers for ``bench/task_startup.py``.

    python -X importtime bench/startup_probe.py tasks.<name> [arguments]

Runs ``tasks.<name>`` as ``python -m`` would (``runpy``, ``__main__``), after wrapping the
places where a task opens a connection: the ledger (``Ledger.of``: engine and migrations), the
lake (``open_store``), the MLflow registry (``registry.client``) and MLflow's SQL stores (their
``__init__``: engine, table check, schema verification). It writes ``startup-probe: ...``
lines to stderr, in the same stream as ``-X importtime``'s lines, so the benchmark can tell
which imports happened before ``main`` (the module's own imports), inside a connection, or
later in the run (lazy imports). The task behaves exactly as from its command line: same
arguments, same environment, same exit code.
"""

from __future__ import annotations

import functools
import importlib.abc
import runpy
import sys
import time
from collections.abc import Callable
from typing import Any

#: set as early as possible: the benchmark compares it with the time it spawned the process
STARTED = time.time()

_depth = 0


def mark(event: str, name: str = "") -> None:
    """One marker line: event, wall clock (epoch s), process CPU s, name."""
    sys.stderr.write(f"startup-probe: {event} {time.time():.6f} {time.process_time():.6f} {name}\n")
    sys.stderr.flush()


def connection(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` wrapped in ``connect-begin``/``connect-end`` markers (outermost only)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _depth
        _depth += 1
        if _depth == 1:
            mark("connect-begin", name)
        try:
            return function(*args, **kwargs)
        finally:
            _depth -= 1
            if _depth == 0:
                mark("connect-end", name)

    return wrapper


def _wrap_store_init(module: Any, name: str) -> None:
    store = module.SqlAlchemyStore
    store.__init__ = connection(name, store.__init__)


#: MLflow's SQL stores, imported lazily by MLflow: wrapped when their module has run
_STORES = {
    "mlflow.store.tracking.sqlalchemy_store": "mlflow-tracking-store",
    "mlflow.store.model_registry.sqlalchemy_store": "mlflow-registry-store",
}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps the MLflow store classes once their modules are executed; finds nothing itself."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _STORES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                execute = spec.loader.exec_module

                def exec_module(module: Any, _execute: Any = execute) -> None:
                    _execute(module)
                    _wrap_store_init(module, _STORES[fullname])

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


def main() -> None:
    mark("probe-start")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    sys.meta_path.insert(0, _AfterImport())
    import tasks.core.cli
    import tasks.core.ledger
    import tasks.core.registry
    import tasks.core.storage

    tasks.core.ledger.Ledger.of = classmethod(  # type: ignore[method-assign]
        connection("ledger", tasks.core.ledger.Ledger.of.__func__)
    )
    tasks.core.storage.open_store = connection("lake", tasks.core.storage.open_store)
    tasks.core.registry.client = connection("mlflow-client", tasks.core.registry.client)
    run_task = tasks.core.cli.run_task

    @functools.wraps(run_task)
    def timed_run_task(*args: Any, **kwargs: Any) -> int:
        mark("main")
        return run_task(*args, **kwargs)

    tasks.core.cli.run_task = timed_run_task
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        mark("end")


if __name__ == "__main__":
    main()
