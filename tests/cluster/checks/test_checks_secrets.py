"""The secrets check (cluster/tools/checks/secrets.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, deployment, obj, topology


def test_the_secrets_script_is_read_with_its_route_logins():
    keys = checks.script_secret_keys()
    assert keys[("airflow", "airflow-admin")] == {"username", "password"}
    assert keys[("mlflow", "mlflow-basic-auth")] == {"users"}
    assert keys[("airflow", "airflow-metadata")] == {"connection"}


def test_secrets_flag_a_reference_to_a_secret_the_script_creates_only_with_credentials(tmp_path):
    script = tmp_path / "create-secrets.sh"
    script.write_text(
        "apply_secret apps always Opaque a=1\n"
        'if [[ -n "${TOKEN:-}" ]]; then\n'
        "  apply_secret apps sometimes Opaque a=1\n"
        "fi\n"
        "route_login apps web admin\n",
        encoding="utf-8",
    )
    created = checks.secrets.script_creates(script)
    assert created[("apps", "always")] is None and created[("apps", "web-basic-auth")] is None
    assert "TOKEN" in created[("apps", "sometimes")]

    def reading(secret: str) -> dict:
        pod = copy.deepcopy(RESTRICTED_POD)
        pod["containers"][0]["envFrom"] = [{"secretRef": {"name": secret}}]
        return deployment(pod=pod)

    def updater(secret: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "registries", "namespace": "apps"},
            "data": {"registries.conf": f"credentials: pullsecret:apps/{secret}\n"},
        }

    for good in (reading("always"), updater("web-login")):
        assert checks.check_secrets(topology([obj(good)]), script) == []
    for bad in (reading("sometimes"), updater("sometimes")):
        errors = checks.check_secrets(topology([obj(bad)]), script)
        assert len(errors) == 1 and "only under `if" in errors[0], errors
    errors = checks.check_secrets(topology([obj(reading("nowhere"))]), script)
    assert "which nothing creates" in errors[0]
    optional = reading("sometimes")
    optional["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["optional"] = (
        True
    )
    assert checks.check_secrets(topology([obj(optional)]), script) == []
