"""The rendered tree's workloads of our images, started here from their specs (see
docs/cluster.md, "Started here from its spec"). Order, as the cluster's would be: the stores;
MLflow, the data API and Airflow's migration Job at once; then Airflow's user Job, init
containers and components; the pipeline's pods (--help each, then fetch for real, then train
and promote on a small curated batch, which gives serving its model); serving; the UI.

Where this machine differs from the cluster, the workload's environment gets one of these
overrides, and each is said in the docs:
* Airflow: the LocalExecutor instead of the KubernetesExecutor (no API server to create worker
  pods), and PIPELINE_RUNTIME=local (the DAG's tasks as processes in the tasks venv of the
  Airflow image, as compose runs them), DAGs from this checkout where git-sync would put them;
* a pipeline pod: XCOM_RETURN_PATH in its own root (the path the sidecar reads, moved);
  train: a small search budget (TRAIN_TIME_BUDGET_SECONDS, TRAIN_MAX_TRIALS).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import render
from workloads import discover, smoke, stores
from workloads.container import Workload
from workloads.environment import Sources
from workloads.network import free_port
from workloads.runner import Run
from workloads.venvs import venv_for

REPO = render.REPO
TOPOLOGY = "single-node"
LOG_GROOMER = (
    "runs /clean-logs, a script of the apache/airflow base image (not in this repository); "
    "it only deletes old log files"
)
AIRFLOW_HEALTH = {  # container -> its part of /api/v2/monitor/health
    "scheduler": "scheduler",
    "dag-processor": "dag_processor",
    "triggerer": "triggerer",
}
TRAIN_BUDGET = {"TRAIN_TIME_BUDGET_SECONDS": "3", "TRAIN_MAX_TRIALS": "1", "TRAIN_THREADS": "1"}


def log_server_ports() -> dict[str, str]:
    """Airflow's log servers (scheduler 8793, triggerer 8794) on free ports: nothing here may
    take a fixed port that another run could hold."""
    return {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def airflow_env() -> dict[str, str]:
    tasks_venv = venv_for(REPO / "images/airflow/requirements-tasks.txt")
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "PIPELINE_RUNTIME": "local",
        "PIPELINE_TASKS_PYTHON": str(tasks_venv / "bin" / "python"),
        "PIPELINE_REPO_ROOT": str(REPO),
        **log_server_ports(),
    }


class ClusterRun:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.topology = render.render_topology(TOPOLOGY)
        self.config_maps = stores.config_maps(self.topology)
        self.secrets = stores.secrets(self.topology, run.dir / "secrets")
        pipeline_env = self.config_maps[("pipeline", "pipeline-env")]
        self.workloads = discover.cluster_workloads(self.topology) + discover.dag_workloads(
            pipeline_env
        )
        self.by_name = {w.name: w for w in self.workloads}
        self.pg = self.s3 = None

    def sources(self, workload: Workload) -> Sources:
        return Sources(workload.namespace, self.config_maps, self.secrets)

    def pick(self, *parts: str) -> list[Workload]:
        return [w for w in self.workloads if all(p in w.name for p in parts)]

    def launch(self, workload: Workload, **kwargs):
        return self.run.launch(workload, self.sources(workload), **kwargs)

    def url(self, namespace: str, service: str, port: int) -> str:
        return f"http://127.0.0.1:{self.run.net.services[(namespace, service)][port]}"

    # --- the stores ---------------------------------------------------------------------------
    def start_stores(self) -> None:
        with ThreadPoolExecutor(2) as pool:
            pg = pool.submit(stores.start_postgres, self.topology, self.secrets, self.run.net)
            s3 = pool.submit(
                stores.start_s3, self.topology, self.secrets, self.run.net, self.run.dir / "s3"
            )
            self.pg, self.s3 = pg.result(), s3.result()
        stores.map_services(self.topology, self.workloads, self.run.net)

    def close(self) -> None:
        if self.s3 is not None:
            self.s3.stop()
        if self.pg is not None:
            self.pg.close()

    # --- the workloads ------------------------------------------------------------------------
    def airflow(self) -> None:
        env = airflow_env()
        for w in self.pick("airflow/"):
            w.links.setdefault("/opt/airflow/dags/repo", REPO)
            if w.container.get("args") == ["bash", "/clean-logs"]:
                self.run.skip(w, LOG_GROOMER)
        migrate = self.pick("airflow-run-airflow-migrations")[0]
        if self.launch(migrate, job=True, extra_env=env, budget=600) is None:
            return
        jobs = self.pick("airflow-create-user") + [
            w for w in self.pick("airflow/") if w.kind.endswith("init")
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda w: self.launch(w, job=True, extra_env=env, budget=300), jobs))
        components = [
            w for w in self.pick("airflow/")
            if w.kind == "Deployment" and w.name not in self.run.outcomes
        ]  # fmt: skip
        api = self.pick("airflow-api-server/api-server")[0]
        api_env = {  # the chart gives no port argument: Airflow's [api] port and host
            **env,
            "AIRFLOW__API__PORT": str(api.ports[8080]),
            "AIRFLOW__API__HOST": "127.0.0.1",
        }
        with ThreadPoolExecutor(len(components)) as pool:
            list(pool.map(
                lambda w: self.launch(w, extra_env=api_env if w is api else env, budget=300),
                components,
            ))  # fmt: skip
        admin = self.secrets[("airflow", "airflow-admin")]
        url = self.url("airflow", "airflow-api-server", 8080)

        def trigger() -> None:
            token = smoke.airflow_token(url, admin["username"], admin["password"])
            smoke.airflow_dag_run(
                url, token, "realtor_replay", {"group_number": 3, "day": "Tuesday"}
            )

        if not self.run.smoke(api.name, "realtor_replay triggered, waited: success", trigger):
            return
        # the others: their heartbeats in the metadata database, as the API reports them
        health = smoke.airflow_health(url)
        for w in components:
            part = AIRFLOW_HEALTH.get(w.name.split("/")[-1])
            if w is not api and part:
                self.run.smoke(w.name, f"{part} healthy (its heartbeat in the database); "
                               "the DAG run above needed it",
                               lambda part=part: smoke.check(
                                   health.get(part, {}).get("status") == "healthy",
                                   f"/api/v2/monitor/health says {part}: {health.get(part)}"))  # fmt: skip

    def pipeline_pods(self) -> str | None:
        """--help of each pod; fetch for real; train and promote on a curated batch (the
        monitor's pod runs for real once serving has logged requests: :meth:`monitor`)."""
        pods = [w for w in self.workloads if w.source == "dag"]
        for pod in pods:
            helped = Workload(**{**pod.__dict__, "name": pod.name + " --help"})
            helped.container = {**pod.container, "args": ["--help"]}
            self.launch(
                helped,
                job=True,
                budget=240,
                extra_env={"XCOM_RETURN_PATH": "/airflow/xcom/return.json"},
            )
        fetch = self.by_name["pipeline/realtor_pipeline.fetch"]
        prepared = self.launch(
            fetch, job=True, budget=300, extra_env={"XCOM_RETURN_PATH": "/airflow/xcom/return.json"}
        )
        if prepared is not None:
            xcom = prepared.root / "airflow/xcom/return.json"
            self.run.smoke(
                fetch.name,
                "fetched one batch",
                lambda: smoke.check(
                    '"stored"' in xcom.read_text(), f"fetch's result: {xcom.read_text()[:300]}"
                ),
            )
        return self.train_and_promote()

    def train_and_promote(self) -> str | None:
        from workloads import model_batch

        env = {
            k: self.run.net.rewrite(v, "pipeline")
            for k, v in {**self.config_maps[("pipeline", "pipeline-env")], **self.secrets[("pipeline", "pipeline-secrets")]}.items()
        }  # fmt: skip
        batch_id = model_batch.curated_batch(env)
        version = None
        for step in ("train", "promote"):
            pod = self.by_name[f"pipeline/realtor_pipeline.{step}"]
            pod.container = {**pod.container, "args": ["--batch-id", str(batch_id)]}
            extra = {
                "XCOM_RETURN_PATH": "/airflow/xcom/return.json",
                **(TRAIN_BUDGET if step == "train" else {}),
            }
            prepared = self.launch(pod, job=True, budget=600, extra_env=extra)
            if prepared is None:
                return None
            result = (prepared.root / "airflow/xcom/return.json").read_text()
            if step == "train":
                import json

                version = str(json.loads(result)["model_version"])
            self.run.smoke(pod.name, f"{step} on a curated batch: {result[:80]}", lambda: None)
        return version

    def monitor(self) -> None:
        """realtor_monitor's pod for real, over what serving's smoke logged (a few requests:
        a ``too_few_rows`` window, recorded through the pod's own database and store settings).
        Its ``--until`` is left out: the rendered one is the fixed date the pods are built for."""
        pod = self.by_name.get("pipeline/realtor_monitor.monitor")
        if pod is None:
            return
        pod.container = {**pod.container, "args": []}
        prepared = self.launch(
            pod, job=True, budget=300, extra_env={"XCOM_RETURN_PATH": "/airflow/xcom/return.json"}
        )
        if prepared is not None:
            xcom = prepared.root / "airflow/xcom/return.json"
            self.run.smoke(
                pod.name,
                "closed a window of what serving logged",
                lambda: smoke.check(
                    '"window_id"' in xcom.read_text(), f"monitor's result: {xcom.read_text()[:300]}"
                ),
            )

    def apps(self) -> None:
        mlflow = self.by_name["mlflow/mlflow/mlflow"]
        data_api = self.by_name["apps/data-api/data-api"]
        airflow_thread = ThreadPoolExecutor(1)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda w: self.launch(w, budget=300), [mlflow, data_api]))
        done = airflow_thread.submit(self.airflow)
        mlflow_url = self.url("mlflow", "mlflow", 5000)
        self.run.smoke(
            mlflow.name,
            "run + artifact in S3 + version + alias",
            lambda: smoke.mlflow_registry(
                mlflow_url, self.s3.endpoint.client(), "mlflow", "cluster-run-smoke"
            ),
        )
        self.run.smoke(
            data_api.name,
            "served one batch",
            lambda: smoke.data_api_batch(self.url("apps", "data-api", 8090)),
        )
        version = self.pipeline_pods()
        serving = self.by_name["apps/serving/serving"]
        if version and self.launch(serving, budget=300):
            self.run.smoke(
                serving.name,
                f"predicted with version {version}",
                lambda: smoke.serving_predict(self.url("apps", "serving", 8000), version),
            )
        if version:
            self.monitor()
        ui = self.by_name["apps/ui/ui"]
        if self.launch(ui, budget=300):
            self.run.smoke(
                ui.name,
                "Predict, Models, Pipeline pages rendered",
                lambda: smoke.ui_pages(self.url("apps", "ui", 8501)),
            )
        done.result()
        airflow_thread.shutdown()


def run_cluster(run: Run) -> None:
    plan = ClusterRun(run)
    try:
        plan.start_stores()
        plan.apps()
    finally:
        run.stop()
        plan.close()
    for w in plan.workloads:
        if w.source == "cluster":
            run.outcome(w.name)  # every workload has a line, even one never reached
    sys.stdout.flush()
