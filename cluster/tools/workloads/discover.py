"""Which containers run one of our images (docker.io/realtor-mlops/*), and how each image is
built: the rendered tree's Deployments, StatefulSets, Jobs and CronJobs (render.py, the same
rendering as Argo CD's), and every pod the DAG's KubernetesPodOperator tasks create."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import render
from checks.common import OUR_REGISTRY
from checks.images import workflow_images
from workloads.container import Workload
from workloads.image import read_image

REPO = render.REPO
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def image_spec(image: str, target: str | None = None):
    entry = workflow_images().get(image)
    if entry is None:
        raise LookupError(f"image {image}: not built by .github/workflows/images.yaml")
    args = {"IMAGE": image, "TASK": entry.get("task") or "", "REVISION": "local"}
    return read_image(REPO / entry["file"], args, target or entry.get("target") or None)


def image_name(reference: str) -> str | None:
    if not reference.startswith(OUR_REGISTRY):
        return None
    return reference.removeprefix(OUR_REGISTRY).split(":")[0].split("@")[0]


def _template(doc: dict) -> dict:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def pod_spec(doc: dict) -> dict:
    return _template(doc)["spec"]


def cluster_workloads(topology: render.Topology) -> list[Workload]:
    out = []
    for obj in topology.objects:
        if obj.kind not in WORKLOAD_KINDS or obj.phase == "Ignored":
            continue
        pod = pod_spec(obj.doc)
        for group in ("initContainers", "containers"):
            for container in pod.get(group) or []:
                image = image_name(container.get("image", ""))
                if image is None:
                    continue
                name = f"{obj.namespace}/{obj.name}/{container['name']}"
                kind = obj.kind if group == "containers" else f"{obj.kind} init"
                labels = (_template(obj.doc).get("metadata") or {}).get("labels") or {}
                out.append(
                    Workload(name, "cluster", obj.namespace, image, kind, container, pod,
                             image_spec(image), labels=labels)
                )  # fmt: skip
    return out


def dag_workloads(pipeline_env: dict[str, str]) -> list[Workload]:
    """The DAGs' pods as their operator builds them (dag_pods.py, in Airflow's venv)."""
    proc = subprocess.run(
        [str(AIRFLOW_PYTHON), str(Path(__file__).with_name("dag_pods.py")), json.dumps(pipeline_env)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(
            f"the DAGs' pods could not be built:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    out = []
    for item in json.loads(proc.stdout.strip().splitlines()[-1])["pods"]:
        pod = item["pod"]
        for container in pod["spec"]["containers"]:
            image = image_name(container.get("image", ""))
            if image is None:
                continue
            name = (
                f"{pod['metadata'].get('namespace', 'pipeline')}/{item['dag_id']}.{item['task_id']}"
            )
            out.append(
                Workload(name, "dag", pod["metadata"].get("namespace") or "pipeline", image, "Pod",
                         container, pod["spec"], image_spec(image))
            )  # fmt: skip
    return out
