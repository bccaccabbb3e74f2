"""DAG tests: run with the Airflow environment (``.venv-airflow/bin/python -m pytest tests/dags``).

Airflow reads its home and configuration when it is first imported, so they are set here,
before any test module imports it: a throwaway AIRFLOW_HOME, the repository's dags folder, no
examples, and a dummy kubeconfig (pods are rendered offline, no cluster is contacted).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("airflow") is None:  # the tasks' env: these tests need Airflow's
    collect_ignore_glob = ["test_*.py"]  # run them with .venv-airflow/bin/python -m pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
SHA = "0123456789abcdef0123456789abcdef01234567"

_HOME = Path(tempfile.mkdtemp(prefix="airflow-dag-tests-"))
KUBECONFIG = _HOME / "kubeconfig"
KUBECONFIG.write_text(
    """apiVersion: v1
kind: Config
clusters:
- name: dummy
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
contexts:
- name: dummy
  context: {cluster: dummy, user: dummy, namespace: pipeline}
current-context: dummy
users:
- name: dummy
  user: {token: not-a-token}
"""
)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "KUBECONFIG": str(KUBECONFIG),
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(KUBECONFIG)}}
        ),
    }
)
if str(DAGS) not in sys.path:  # as Airflow does for its dags folder: `import realtor` works
    sys.path.insert(0, str(DAGS))
for _name in [k for k in os.environ if k.startswith("PIPELINE_")]:
    del os.environ[_name]  # the tests choose the pipeline's settings themselves

LoadDags = Callable[..., Any]


@pytest.fixture
def load_dags(monkeypatch: pytest.MonkeyPatch) -> LoadDags:
    """``load_dags(PIPELINE_RUNTIME="kubernetes", ...)``: a DagBag parsed with that environment."""
    from airflow.dag_processing.dagbag import DagBag

    def load(**env: str) -> DagBag:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return DagBag(dag_folder=str(DAGS))

    return load


@pytest.fixture
def k8s_env() -> dict[str, str]:
    return {"PIPELINE_RUNTIME": "kubernetes", "PIPELINE_IMAGE_TAG": SHA}
