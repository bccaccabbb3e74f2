"""One smoke call per workload, each using the workload's database and storage for real."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HOUSE = {
    "brokered_by": 101640.0, "status": "for_sale", "bed": 3, "bath": 2, "acre_lot": 0.12,
    "street": 1698080.0, "city": "Austin", "state": "Texas", "zip_code": 78701.0,
    "house_size": 1850, "prev_sold_date": "2015-06-01",
}  # fmt: skip


class SmokeFailedError(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailedError(message)


def mlflow_registry(tracking_uri: str, s3_client, bucket: str, model: str) -> str:
    """Log a run with an artifact (to S3 through the server), register a version, set an
    alias; the artifact must be in the bucket. Returns the version."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("cluster-run-smoke")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("cluster-run-smoke")
    )
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "smoke", 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "smoke.txt"
        path.write_text("logged by make cluster-run\n")
        client.log_artifact(run.info.run_id, str(path))
    client.set_terminated(run.info.run_id)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    check(
        any(k.endswith(f"{run.info.run_id}/artifacts/smoke.txt") for k in keys),
        f"the artifact is not in s3://{bucket} (keys: {keys[:5]})",
    )
    if not client.search_registered_models(filter_string=f"name = '{model}'"):
        client.create_registered_model(model)
    version = client.create_model_version(
        model, f"runs:/{run.info.run_id}/smoke.txt", run.info.run_id
    )
    client.set_registered_model_alias(model, "smoke", version.version)
    check(
        client.get_model_version_by_alias(model, "smoke").version == version.version,
        "the alias does not name the new version",
    )
    return str(version.version)


def data_api_batch(url: str) -> int:
    response = httpx.get(f"{url}/data", params={"group_number": 2, "day": "Tuesday"}, timeout=120)
    check(
        response.status_code == 200, f"/data answered {response.status_code}: {response.text[:200]}"
    )
    rows = len(response.json()["data"])
    check(rows > 0, "/data served no rows")
    return rows


def serving_predict(url: str, version: str | None) -> float:
    """Wait for /ready (a model loaded: compose's healthcheck asks only /health), predict."""
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/ready", timeout=10).status_code != 200:
        check(time.monotonic() < deadline, "serving never became ready (/ready) in 120 s")
        time.sleep(1)
    response = httpx.post(f"{url}/predict", json=HOUSE, timeout=60)
    check(
        response.status_code == 200,
        f"/predict answered {response.status_code}: {response.text[:300]}",
    )
    body = response.json()
    check(
        version is None or str(body.get("model_version")) == str(version),
        f"served version {body.get('model_version')}, not {version}",
    )
    return float(body["prices"][0] if "prices" in body else body["price"])


def ui_pages(url: str) -> list[str]:
    """Each page of the app in a real browser: its heading shown and no error box."""
    from tests.support.browser import browser_page

    seen = []
    with browser_page() as page:
        for path, text in (
            ("", "Estimated price"),
            ("/models", "Model versions"),
            ("/pipeline", "Pipeline decisions"),
        ):
            page.goto(f"{url}{path}", wait_until="domcontentloaded")
            page.get_by_text(text).first.wait_for(timeout=90_000)
            page.wait_for_timeout(500)
            errors = page.locator(
                "[data-testid='stAlertContentError'], [data-testid='stException']"
            )
            check(
                errors.count() == 0,
                f"page {path or '/'} shows an error: {errors.first.inner_text()[:300] if errors.count() else ''}",
            )
            seen.append(path or "/")
    return seen


def airflow_token(url: str, username: str, password: str) -> str:
    response = httpx.post(
        f"{url}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    check(
        response.status_code in (200, 201),
        f"/auth/token answered {response.status_code}: {response.text[:200]}",
    )
    return response.json()["access_token"]


def airflow_health(url: str) -> dict:
    response = httpx.get(f"{url}/api/v2/monitor/health", timeout=30)
    check(response.status_code == 200, f"health answered {response.status_code}")
    return response.json()


def airflow_dag_run(url: str, token: str, dag_id: str, conf: dict, budget: float = 300) -> str:
    """Unpause ``dag_id``, trigger a run through the REST API, wait for it through the API's
    own wait endpoint; the run must end in success."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{url}/api/v2", headers=headers, timeout=60) as api:
        deadline = time.monotonic() + 120
        while True:  # the dag processor must have parsed the file first
            found = api.get(f"/dags/{dag_id}")
            if found.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(2)
        check(found.status_code == 200, f"DAG {dag_id} not known to the API: {found.text[:200]}")
        api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        made = api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        check(
            made.status_code in (200, 201),
            f"trigger answered {made.status_code}: {made.text[:300]}",
        )
        run_id = made.json()["dag_run_id"]
        with api.stream(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/wait", params={"interval": 1},
            timeout=httpx.Timeout(budget, connect=10),
        ) as waited:  # fmt: skip
            body = waited.read().decode()
        check(waited.status_code == 200, f"wait answered {waited.status_code}: {body[:300]}")
        lines = body.strip().splitlines()
        check(bool(lines), "the wait endpoint ended without a line (see the API server's log)")
        last = json.loads(lines[-1])
        check(last.get("state") == "success", f"the run ended {last}")
        return run_id


def simple_auth_password(home: Path, user: str) -> str:
    """The password `airflow standalone` generated for ``user`` (SimpleAuthManager's file)."""
    deadline = time.monotonic() + 120
    for path in iter(
        lambda: next(iter(home.glob("simple_auth_manager_passwords.json*")), None), object()
    ):
        if path is not None:
            return json.loads(path.read_text())[user]
        if time.monotonic() > deadline:
            raise SmokeFailedError(f"no simple_auth_manager_passwords.json* in {home}")
        time.sleep(1)
    raise SmokeFailedError("unreachable")
