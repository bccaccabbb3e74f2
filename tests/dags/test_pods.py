"""The pods the kubernetes runtime builds: valid Pod objects for Kubernetes 1.33 (K3s v1.33),
admitted by the "restricted" Pod Security Standard (XCom sidecar included), pinned to an
immutable image tag, sized, fed by the ConfigMap and the Secret. Rendered offline."""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient
from realtor.specs import TASKS

from tests.dags.conftest import REPO, SHA
from tests.support import step_list

sys.path.insert(0, str(REPO / "cluster" / "tools"))
from pod_security import psa_violations  # the cluster checks' Pod Security rules

K8S_VERSION = "1.33"


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the "restricted" Pod Security level refuses in ``pod`` (empty: admitted)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return psa_violations(pod["spec"], annotations, "restricted")


#: (DAG, step) of every step of the table, in the DAG that wires it (tests/support/step_list.py)
DAG_OF = {name: dags[0] for name, dags in step_list.wired_steps(REPO).items()}
POD_TASKS = [(DAG_OF[name], name) for name in TASKS]


def test_every_dag_task_that_runs_a_step_is_a_step_of_the_table(k8s_bag) -> None:
    pods = {
        (dag_id, task.task_id)
        for dag_id, dag in k8s_bag.dags.items()
        for task in dag.tasks
        if type(task).__name__ == "PipelinePodOperator"
    }
    assert pods == set(POD_TASKS)


class _FakeTaskInstance:
    def __init__(self, dag_id: str, task_id: str) -> None:
        self.dag_id, self.task_id, self.try_number, self.map_index = dag_id, task_id, 1, -1

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: Any) -> Any:
        return {"status": "stored", "batch_id": 42}


def render_pod(bag, dag_id: str, task_id: str) -> dict[str, Any]:
    dag = bag.dags[dag_id]
    operator = dag.get_task(task_id)
    context = {
        "ti": _FakeTaskInstance(dag_id, task_id),
        "run_id": "manual__2026-01-01T00:00:00+00:00",
        "dag": dag,
        "params": {"group_number": 3, "day": "Tuesday"},
        "data_interval_end": datetime(2026, 1, 1, tzinfo=UTC),
    }
    operator.render_template_fields(context)
    pod = operator.build_pod_request_obj(context)
    return ApiClient().sanitize_for_serialization(pod)


@pytest.fixture
def k8s_bag(load_dags, k8s_env):
    bag = load_dags(**k8s_env)
    assert bag.import_errors == {}
    return bag


@pytest.mark.parametrize(("dag_id", "task_id"), POD_TASKS)
def test_pod_is_valid_and_restricted(k8s_bag, dag_id: str, task_id: str) -> None:
    pod = render_pod(k8s_bag, dag_id, task_id)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    assert restricted_violations(pod) == []
    containers = pod["spec"]["containers"]
    assert [c["name"] for c in containers] == ["base", "airflow-xcom-sidecar"]
    for container in containers:
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1], f"{image} has no tag"
        assert not image.endswith(":latest")
        resources = container["resources"]
        assert resources["requests"]["cpu"], container["name"]
        assert resources["requests"]["memory"], container["name"]
        assert resources["limits"]["memory"], container["name"]
        assert resources["limits"]["cpu"], container["name"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(("dag_id", "task_id"), POD_TASKS)
def test_pod_runs_the_task_image_and_contract(k8s_bag, dag_id: str, task_id: str) -> None:
    pod = render_pod(k8s_bag, dag_id, task_id)
    spec = pod["spec"]
    base = spec["containers"][0]
    assert pod["metadata"]["namespace"] == "pipeline"
    assert spec["serviceAccountName"] == "pipeline-runner"
    assert spec["restartPolicy"] == "Never"
    image = TASKS[task_id].image
    assert base["image"] == f"docker.io/realtor-mlops/{image}:{SHA}"
    if image == task_id.replace("_", "-"):
        assert not base.get("command"), "the image's ENTRYPOINT is the task"
    else:
        assert base["command"] == ["python", "-m", f"tasks.{task_id}"]
    if dag_id == "realtor_replay" or task_id == "fetch":
        assert base["args"] == ["--group-number", "3", "--day", "Tuesday"]
    elif dag_id == "realtor_monitor":
        assert base["args"] == ["--until", "2026-01-01T00:00:00+00:00"]
    else:
        assert base["args"] == ["--batch-id", "42"]
    assert base["envFrom"] == [
        {"configMapRef": {"name": "pipeline-env"}},
        {"secretRef": {"name": "pipeline-secrets"}},
    ]
    mounts = {m["mountPath"]: m["name"] for m in base["volumeMounts"]}
    assert mounts["/airflow/xcom"] == "xcom"
    assert mounts["/tmp"] == "tmp"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["tmp"]
    assert "emptyDir" in volumes["xcom"]


def test_train_gets_the_largest_memory(k8s_bag) -> None:
    limits = {
        task: render_pod(k8s_bag, dag, task)["spec"]["containers"][0]["resources"]["limits"]
        for dag, task in POD_TASKS
    }
    assert limits["train"]["memory"] == "2Gi"
    for task, limit in limits.items():
        if task != "train":
            assert limit["memory"].endswith("Mi"), task
            assert int(limit["memory"][:-2]) < 2048, task


def test_operator_settings(k8s_bag) -> None:
    for dag_id, task_id in POD_TASKS:
        operator = k8s_bag.dags[dag_id].get_task(task_id)
        assert type(operator).__name__ == "PipelinePodOperator"
        assert operator.do_xcom_push is True
        assert operator.on_finish_action.value == "delete_succeeded_pod"
        assert operator.execution_timeout is not None


@pytest.mark.parametrize("tag", ["latest", "", "  ", "v1.2.3", "main", "0123456", "ABCDEF0"])
def test_factory_refuses_a_moving_or_invalid_tag(load_dags, tag: str) -> None:
    from realtor.config import PipelineConfigError, load_config

    env = {"PIPELINE_RUNTIME": "kubernetes", "PIPELINE_IMAGE_TAG": tag}
    if tag == "0123456":  # 7 hex digits: an abbreviated SHA is fine
        assert load_config(env).image_tag == tag
        return
    with pytest.raises(PipelineConfigError, match="PIPELINE_IMAGE_TAG"):
        load_config(env)
    bag = load_dags(**env)
    assert len(bag.import_errors) == 3, "every DAG file refuses to parse"
    assert all("PIPELINE_IMAGE_TAG" in error for error in bag.import_errors.values())


def test_latest_is_refused_with_a_clear_message() -> None:
    from realtor.config import PipelineConfigError, load_config

    with pytest.raises(PipelineConfigError, match="latest is refused"):
        load_config({"PIPELINE_RUNTIME": "kubernetes", "PIPELINE_IMAGE_TAG": "latest"})
    with pytest.raises(PipelineConfigError, match="PIPELINE_IMAGE_TAG is empty"):
        load_config({"PIPELINE_RUNTIME": "kubernetes"})


def test_the_restricted_checks_catch_a_bad_pod(k8s_bag) -> None:
    pod = render_pod(k8s_bag, "realtor_pipeline", "train")
    bad = copy.deepcopy(pod)
    bad["spec"]["hostNetwork"] = True
    bad["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    sidecar = bad["spec"]["containers"][1]["securityContext"]
    sidecar["allowPrivilegeEscalation"] = True
    sidecar["privileged"] = True
    sidecar["capabilities"] = {"add": ["SYS_ADMIN"]}
    sidecar["seccompProfile"] = {"type": "Unconfined"}
    del bad["spec"]["securityContext"]["runAsNonRoot"]
    del bad["spec"]["containers"][0]["securityContext"]["runAsNonRoot"]
    problems = "\n".join(restricted_violations(bad))
    for expected in (
        "hostNetwork=true",
        "hostPath volume host",
        "container airflow-xcom-sidecar privileged",
        "container airflow-xcom-sidecar must set allowPrivilegeEscalation=false",
        "container airflow-xcom-sidecar must drop ALL capabilities",
        "container airflow-xcom-sidecar adds capabilities",
        "airflow-xcom-sidecar seccompProfile Unconfined",
        "container base must run with runAsNonRoot=true",
    ):
        assert expected in problems
