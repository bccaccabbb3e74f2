"""docker-compose.yaml's services of our images, each started from its compose spec (command,
environment, healthcheck) with the compose file's service names mapped to local ports.

A generated .env (what .env.example asks for: random hex passwords) feeds the interpolation.
The stores are the ones the file names, run here: `postgres` (a private server made as the
postgres image makes it: POSTGRES_USER a superuser with POSTGRES_PASSWORD, POSTGRES_DB, then
compose/postgres-init.sql) and `s3` (`weed mini` with the service's own command flags and
credentials). Prometheus and Grafana are not our images: not run. Overrides, as for the
cluster: Airflow's [api] port and host and [core] execution_api_server_url (its port is no
argument, so it cannot be moved like the others')."""

from __future__ import annotations

import json
import secrets as random_tokens
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workloads import backing, compose_spec, discover, smoke
from workloads.cluster_run import log_server_ports
from workloads.container import Workload
from workloads.environment import Sources
from workloads.network import free_port
from workloads.runner import Run

REPO = discover.REPO
COMPOSE = REPO / "docker-compose.yaml"
NAMESPACE = "compose"
NOT_OURS = "not one of our images (upstream image, not started here)"


def dot_env() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": random_tokens.token_hex(24),
        "AWS_SECRET_ACCESS_KEY": random_tokens.token_hex(24),
        "GRAFANA_ADMIN_PASSWORD": random_tokens.token_hex(16),
    }


def our_image(service: dict) -> tuple[str, str | None] | None:
    """(image name, target) of a service built from one of our Dockerfiles."""
    build = service.get("build")
    if not isinstance(build, dict):
        return None
    dockerfile = build.get("dockerfile", "Dockerfile")
    for name, entry in discover.workflow_images().items():
        if entry["file"] == dockerfile:
            return name, build.get("target")
    return None


class ComposeRun:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.env = dot_env()
        self.file = compose_spec.load(COMPOSE, self.env)
        self.services = self.file["services"]
        self.workloads: dict[str, Workload] = {}
        for name, service in self.services.items():
            image = our_image(service)
            if image is None:
                continue
            container, pod, binds = compose_spec.container(name, service)
            workload = Workload(
                f"compose/{name}", "compose", NAMESPACE, image[0], "compose service",
                container, pod, discover.image_spec(image[0], image[1]),
            )  # fmt: skip
            workload.links = {t: (REPO / s).resolve() for t, s in binds.items()}
            if "x-healthcheck" not in container and workload.spec.healthcheck:
                # no healthcheck in the file: Compose runs the image's HEALTHCHECK
                container["x-healthcheck"] = {
                    "exec": {"command": workload.spec.healthcheck},
                    "periodSeconds": 1,
                }
            for port in container["ports"]:
                workload.ports[port["containerPort"]] = free_port()
                run.net.add(
                    NAMESPACE, name, port["containerPort"], workload.ports[port["containerPort"]]
                )
            self.workloads[name] = workload
        self.pg = self.s3 = None

    def start_stores(self) -> None:
        pg_service = self.services["postgres"]["environment"]
        self.pg = backing.start_tls_postgres()
        user, password, db = (
            pg_service[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
        )
        self.pg.sql([
            f"CREATE ROLE \"{user}\" SUPERUSER LOGIN PASSWORD '{password}'",
            f'CREATE DATABASE "{db}" OWNER "{user}"',
        ])  # fmt: skip
        init = (REPO / "compose/postgres-init.sql").read_text()
        self.pg.sql(
            [
                s
                for s in init.split(";")
                if (s.strip() and not s.strip().startswith("--")) or "CREATE" in s
            ]
        )
        self.run.net.add(NAMESPACE, "postgres", 5432, self.pg.port)
        s3 = self.services["s3"]
        flags = [w for w in s3["command"] if w.startswith("-bucket=")]
        buckets = flags[0].removeprefix("-bucket=").split(",") if flags else []
        env = s3["environment"]
        identity = {
            "name": "compose",
            "credentials": [
                {"accessKey": env["AWS_ACCESS_KEY_ID"], "secretKey": env["AWS_SECRET_ACCESS_KEY"]}
            ],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config = json.dumps({"identities": [identity]})
        self.s3 = backing.start_seaweed(self.run.dir / "s3", config, buckets or ["realtor-data"])
        self.run.net.add(NAMESPACE, "s3", 8333, self.s3.s3_port)

    def launch(self, name: str, extra_env: dict[str, str] | None = None):
        workload = self.workloads[name]
        return self.run.launch(
            workload, Sources(NAMESPACE, {}, {}), extra_env=extra_env, budget=300
        )

    def url(self, name: str, port: int) -> str:
        return f"http://127.0.0.1:{self.workloads[name].ports[port]}"

    def close(self) -> None:
        if self.s3 is not None:
            self.s3.stop()
        if self.pg is not None:
            self.pg.close()

    def services_in_order(self) -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self.launch, ["mlflow", "data-api"]))
        self.run.smoke(
            "compose/mlflow",
            "run + artifact in S3 + version + alias",
            lambda: smoke.mlflow_registry(
                self.url("mlflow", 5000), self.s3.endpoint.client(), "mlflow", "compose-smoke"
            ),
        )
        self.run.smoke(
            "compose/data-api",
            "served one batch",
            lambda: smoke.data_api_batch(self.url("data-api", 8090)),
        )
        airflow = self.workloads["airflow"]
        port = airflow.ports[8080]
        self.launch(
            "airflow",
            {  # its port is no argument: [api] port and host, and where tasks reach that API
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                **log_server_ports(),
            },
        )
        self.airflow_smoke()
        self.launch("serving")
        self.run.smoke(
            "compose/serving",
            "predicted",
            lambda: smoke.serving_predict(self.url("serving", 8000), None),
        )
        self.launch("ui")
        self.run.smoke(
            "compose/ui",
            "Predict, Models, Pipeline pages rendered",
            lambda: smoke.ui_pages(self.url("ui", 8501)),
        )

    def airflow_smoke(self) -> None:
        prepared = self.run.prepared.get("compose/airflow")
        if prepared is None:
            return

        def trigger() -> None:
            home = Path(prepared.env["AIRFLOW_HOME"])
            password = smoke.simple_auth_password(home, "admin")
            token = smoke.airflow_token(self.url("airflow", 8080), "admin", password)
            smoke.airflow_dag_run(
                self.url("airflow", 8080),
                token,
                "realtor_pipeline",
                {"group_number": 1, "day": "Tuesday"},
                budget=900,
            )

        self.run.smoke(
            "compose/airflow",
            "realtor_pipeline triggered, waited: success (a model for serving)",
            trigger,
        )


def run_compose(run: Run) -> None:
    plan = ComposeRun(run)
    for name in plan.services:
        if name not in plan.workloads:
            run.outcome(f"compose/{name}").skipped = (
                "upstream image: a local server with its settings stands in (the store the others use)"
                if name in ("postgres", "s3")
                else NOT_OURS
            )
    try:
        plan.start_stores()
        plan.services_in_order()
    finally:
        run.stop()
        plan.close()
