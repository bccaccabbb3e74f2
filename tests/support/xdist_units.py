"""The suite's work units under pytest-xdist (``make test`` runs ``-n 2 --dist loadscope``).

A worker runs whole units. A unit is a test module (its module-scoped fixtures are set up once),
except that the modules sharing one expensive session fixture form one unit, so the fixture is
built once, by the worker that runs them (:data:`SHARED_UNITS`). The longest units are handed
out first, longest first, so that no worker is left alone with a long one at the end
(:data:`LONGEST_FIRST`); the others follow in collection order.

xdist's ``--dist loadgroup`` (``xdist_group`` marks) cannot group across modules here: it renames
the test ids, which has no effect with pytest 9 (pytest-xdist 3.8), so every test would become a
unit of its own. Hence a scheduler of our own (``pytest_xdist_make_scheduler`` in
``tests/conftest.py``) that maps a test id to its unit by module, with the table below; each
worker checks at collection that the table names every module that uses a shared fixture
(:func:`check_units`: a test of a module missing from it fails at setup, saying so), so a new
module cannot build a second copy silently.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from xdist.scheduler import LoadScopeScheduling

#: session fixture -> (its unit, the modules that use it)
SHARED_UNITS: dict[str, tuple[str, tuple[str, ...]]] = {
    # a model trained and promoted by the real steps, and serving on it (tests/conftest.py)
    "served_stack": (
        "served-model",
        (
            "tests/routes/test_mlflow_route_auth.py",
            "tests/serving/test_api.py",
            "tests/serving/test_lifecycle.py",
            "tests/serving/test_live_traffic.py",
            "tests/serving/test_preparation.py",
            "tests/serving/test_schemathesis.py",
            "tests/serving/test_shadow.py",
            "tests/tasks/promote/test_promote_shadow.py",
            "tests/ui/test_models_page.py",
            "tests/ui/test_pipeline_page.py",
            "tests/ui/test_predict_page.py",
            "tests/ui/test_predict_warnings.py",
            "tests/ui/test_screenshot.py",
        ),
    ),
    # Airflow's migrated metadata database and an MLflow server (tests/e2e/conftest.py)
    "airflow_env": (
        "airflow",
        ("tests/e2e/test_pipeline_e2e.py", "tests/e2e/test_pipeline_variants.py"),
    ),
}
UNIT_OF_MODULE = {module: unit for unit, modules in SHARED_UNITS.values() for module in modules}

#: the longest units, longest first (seconds on 2 shared cores, serial run, in comments)
LONGEST_FIRST = (
    "airflow",  # ~350: the DAG through Airflow, 13 runs
    "tests/tasks/test_lifecycle_story.py",  # ~175: six batches through the task command lines
    "tests/e2e/test_faults.py",  # ~110
    "served-model",  # ~100
    "tests/tasks/test_train_promote_mlflow.py",  # ~55
    "tests/tasks/test_steps_concurrency.py",  # ~50
    "tests/tasks/fetch/test_fetch.py",  # ~50
    "tests/tasks/validate/test_validate_cli.py",  # ~35
    "tests/tasks/test_quarantine_story.py",  # ~25
    "tests/tasks/drift_check/test_drift_check.py",  # ~20
)


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def unit_of(nodeid: str) -> str:
    """The work unit of a test id: its module, or the shared unit its module belongs to."""
    module = module_of(nodeid)
    return UNIT_OF_MODULE.get(module, module)


#: why a test may not run in this collection (set by :func:`check_units`)
OUTSIDE_ITS_UNIT = pytest.StashKey[str]()


def check_units(items: list[pytest.Item]) -> None:
    """Mark each test whose module uses a shared fixture but is not in that fixture's unit."""
    for item in items:
        for fixture, (unit, _) in SHARED_UNITS.items():
            if fixture in item.fixturenames and unit_of(item.nodeid) != unit:
                item.stash[OUTSIDE_ITS_UNIT] = (
                    f"{module_of(item.nodeid)} uses the session fixture {fixture!r}: add it to "
                    f"the {unit!r} unit in tests/support/xdist_units.py (else each xdist worker "
                    "builds its own copy)"
                )


def fail_outside_its_unit(item: pytest.Item) -> None:
    """Fail a test marked by :func:`check_units`, before its fixtures are built."""
    problem = item.stash.get(OUTSIDE_ITS_UNIT, None)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


def make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    """xdist's scope scheduling over our units, the longest handed out first."""
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete before the first unit is handed out
                first_seen = {unit: i for i, unit in enumerate(self.workqueue)}

                def rank(unit: str) -> tuple[int, int]:
                    longest = LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else None
                    return (0, longest) if longest is not None else (1, first_seen[unit])

                self.workqueue = OrderedDict(
                    sorted(self.workqueue.items(), key=lambda entry: rank(entry[0]))
                )
                self.ordered = True
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False  # collection order after the longest units
    return UnitScheduling(config, log)
