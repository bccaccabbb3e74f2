"""Print, as JSON, the pod of every KubernetesPodOperator task of our DAGs, as the operator
builds it (build_pod_request_obj) with the cluster's pipeline settings. Run with Airflow's
Python (.venv-airflow): `python dag_pods.py ENV_JSON` where ENV_JSON holds the ConfigMap
pipeline-env's data. Offline: a dummy kubeconfig, nothing is contacted (as tests/dags)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DAGS = REPO / "dags"
#: the logical date and data interval the pods are rendered for
RUN_AT = datetime(2026, 1, 1, tzinfo=UTC)


class _TaskInstance:
    def __init__(self, dag_id: str, task_id: str) -> None:
        self.dag_id, self.task_id, self.try_number, self.map_index = dag_id, task_id, 1, -1

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return {"status": "stored", "batch_id": 1}


def main(env_json: str) -> int:
    home = Path(tempfile.mkdtemp(prefix="dag-pods-"))
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: d\n  cluster: {server: "
        '"https://127.0.0.1:1"}\ncontexts:\n- name: d\n  context: {cluster: d, user: d}\n'
        "current-context: d\nusers:\n- name: d\n  user: {token: x}\n"
    )
    os.environ.update(json.loads(env_json))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "KUBECONFIG": str(kubeconfig),
        }
    )
    sys.path.insert(0, str(DAGS))
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import ApiClient

    bag = DagBag(dag_folder=str(DAGS))
    if bag.import_errors:
        print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        return 1
    pods = []
    for dag_id, dag in sorted(bag.dags.items()):
        for task in dag.tasks:
            if not isinstance(task, KubernetesPodOperator):
                continue
            context = {
                "ti": _TaskInstance(dag_id, task.task_id),
                "run_id": "manual__2026-01-01T00:00:00+00:00",
                "dag": dag,
                "params": {"group_number": 1, "day": "Tuesday"},
                "logical_date": RUN_AT,
                "data_interval_start": RUN_AT,
                "data_interval_end": RUN_AT,  # realtor_monitor's --until
            }
            task.render_template_fields(context)
            pod = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(context))
            pods.append({"dag_id": dag_id, "task_id": task.task_id, "pod": pod})
    print(json.dumps({"pods": pods}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
