"""The MLflow route, reproduced: the Middleware and IngressRoute the cluster applies
(cluster/apps/mlflow, rendered), the Secret the real create-secrets.sh makes, Traefik's
BasicAuth behaviour (tests/support/traefik_basic_auth.py) in front of a real MLflow server
(Postgres backend store, artifacts proxied to SeaweedFS).

Anonymous and wrong credentials get 401 and never reach MLflow; the generated login works for
the REST API, the UI and the MLflow client (runs, artifacts, registry, the production alias);
in-cluster clients keep using the Service directly, with no credentials, as before.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.support import fake_kubectl
from tests.support.served_model import ServedStack
from tests.support.traefik_basic_auth import BasicAuth, ProxyLog, basic_auth_proxy

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
HOST = "mlflow.10.43.100.95.nip.io"


def _render_mlflow() -> list[dict]:
    """The folder the mlflow Application syncs, rendered by real kustomize (cluster/tools)."""
    tools = str(REPO / "cluster" / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import render

    return render.render(REPO / "cluster/apps/mlflow/base")


@pytest.fixture(scope="module")
def middleware() -> dict:
    """The Middleware the MLflow IngressRoute uses, as the cluster would apply it."""
    docs = _render_mlflow()
    (route,) = [d for d in docs if d["kind"] == "IngressRoute"]
    (rule,) = route["spec"]["routes"]
    assert rule["match"] == f"Host(`{HOST}`)"
    (ref,) = rule["middlewares"]
    (found,) = [
        d for d in docs if d["kind"] == "Middleware" and d["metadata"]["name"] == ref["name"]
    ]
    assert found["metadata"]["namespace"] == route["metadata"]["namespace"] == "mlflow"
    return found


@pytest.fixture(scope="module")
def login(generated_secrets: Path) -> tuple[str, str]:
    values = fake_kubectl.secret_values(generated_secrets, "mlflow", "mlflow-login")
    return values["username"], values["password"]


@pytest.fixture(scope="module")
def tracking_uri(served_stack: ServedStack) -> str:
    """The in-cluster Service: the real MLflow server (PostgreSQL backend, artifacts on
    SeaweedFS), reached directly. The session's shared one: its model is another name."""
    return served_stack.stack.tracking_uri


@pytest.fixture(scope="module")
def route(
    middleware: dict, generated_secrets: Path, tracking_uri: str
) -> Iterator[tuple[str, ProxyLog]]:
    """The published route: Traefik's BasicAuth with the generated users, then MLflow."""
    name = middleware["spec"]["basicAuth"]["secret"]
    secret = fake_kubectl.read_object(generated_secrets, "Secret", "mlflow", name)
    assert secret is not None, f"create-secrets.sh made no Secret mlflow/{name}"
    with basic_auth_proxy(BasicAuth.from_manifests(middleware, secret), tracking_uri) as served:
        yield served


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


PATHS = [
    "/",
    "/health",
    "/api/2.0/mlflow/experiments/search?max_results=5",
    "/ajax-api/2.0/mlflow/registered-models/search",
    "/api/2.0/mlflow-artifacts/artifacts",
]


def test_anonymous_and_wrong_credentials_are_rejected_before_mlflow(route, login, tracking_uri):
    url, log = route
    user, password = login
    before = len(log.forwarded)
    wrong = [
        {},
        basic(user, password + "x"),
        basic(user, ""),
        basic("root", password),
        basic(user, password.upper()),
        {"Authorization": f"Bearer {password}"},
        {"Authorization": "Basic !!not-base64!!"},
    ]
    for headers in wrong:
        for path in PATHS:
            answer = httpx.get(url + path, headers=headers, timeout=30)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
    # moving the production alias, anonymously: refused, and MLflow never saw it
    answer = httpx.post(
        url + "/api/2.0/mlflow/registered-models/alias",
        json={"name": "realtor-price", "alias": "production", "version": "1"},
        timeout=30,
    )
    assert answer.status_code == 401
    assert len(log.forwarded) == before
    # the same request straight at the Service reaches MLflow (which says the model is unknown)
    direct = httpx.post(
        tracking_uri + "/api/2.0/mlflow/registered-models/alias",
        json={"name": "realtor-price", "alias": "production", "version": "1"},
        timeout=30,
    )
    assert direct.status_code == 404


def test_generated_credentials_are_accepted_and_not_passed_on(route, login):
    url, log = route
    answer = httpx.get(
        url + "/api/2.0/mlflow/experiments/search?max_results=5", headers=basic(*login), timeout=30
    )
    assert answer.status_code == 200
    assert "experiments" in answer.json()
    page = httpx.get(url + "/", headers=basic(*login), timeout=30)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    # removeHeader: true - MLflow never receives the route's credentials
    assert log.forwarded
    assert all("authorization" not in {k.lower() for k in h} for h in log.forwarded)


def test_mlflow_client_through_the_route_and_in_cluster_without_credentials(
    route, login, tracking_uri, monkeypatch, tmp_path
):
    url, _ = route
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(url, registry_uri=url).search_experiments()

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", login[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", login[1])
    client = MlflowClient(url, registry_uri=url)  # not the process-wide registry URI
    experiment = client.create_experiment("route-auth")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "through", "route")
    client.log_metric(run.info.run_id, "rmse", 1.5)
    note = tmp_path / "note.txt"
    note.write_text("uploaded through the authenticated route\n")
    client.log_artifact(run.info.run_id, str(note))  # proxied artifact upload, via the route
    client.set_terminated(run.info.run_id)
    client.create_registered_model("route-auth-model")
    version = client.create_model_version(
        "route-auth-model", f"{run.info.artifact_uri}/note.txt", run.info.run_id
    )
    client.set_registered_model_alias("route-auth-model", "production", version.version)

    # pipeline pods and serving: the Service directly, no credentials, unchanged
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    inside = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    found = inside.get_model_version_by_alias("route-auth-model", "production")
    assert found.run_id == run.info.run_id
    assert inside.get_run(run.info.run_id).data.params == {"through": "route"}
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="note.txt", tracking_uri=tracking_uri
    )
    assert Path(local).read_text() == "uploaded through the authenticated route\n"
