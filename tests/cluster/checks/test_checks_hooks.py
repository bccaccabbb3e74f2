"""The hooks check (cluster/tools/checks/hooks.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, obj, render, topology


def _job(sa: str) -> dict:
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["serviceAccountName"] = sa
    pod["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pre-upgrade", "namespace": "apps"},
        "spec": {"template": {"spec": pod}},
    }


def test_hooks_flag_a_presync_hook_that_needs_a_sync_resource():
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "svc", "namespace": "apps"},
    }
    late = topology([obj(_job("svc"), phase="PreSync"), obj(sa, phase="Sync")])
    errors = checks.check_hooks(late)
    assert errors and "PreSync" in errors[0] and "ServiceAccount svc" in errors[0]
    early = topology([obj(_job("svc"), phase="PreSync", wave=1), obj(sa, phase="PreSync", wave=0)])
    assert checks.check_hooks(early) == []


def test_helm_hooks_map_to_argo_cd_phases():
    def annotated(**annotations):
        return {"metadata": {"annotations": annotations}}

    assert render.phase_of(annotated(**{"helm.sh/hook": "pre-install,pre-upgrade"})) == (
        "PreSync",
        0,
    )
    assert render.phase_of(
        annotated(**{"helm.sh/hook": "post-install", "helm.sh/hook-weight": "-5"})
    ) == (
        "PostSync",
        -5,
    )
    assert render.phase_of(annotated(**{"helm.sh/hook": "test"}))[0] == "Ignored"
    both = annotated(**{"helm.sh/hook": "pre-install", "argocd.argoproj.io/hook": "Sync"})
    assert render.phase_of(both)[0] == "Sync"


def test_hooks_flag_a_job_that_races_the_migration_of_its_database():
    def job(name: str, args: list[str], wave: int) -> render.Obj:
        pod = copy.deepcopy(RESTRICTED_POD)
        pod["restartPolicy"] = "Never"
        pod["containers"][0]["args"] = args
        pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "db-url"}}]
        doc = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"template": {"spec": pod}},
        }
        return obj(doc, wave=wave)

    migrate = job("migrate", ["bash", "-c", "exec airflow db migrate"], 0)
    same_wave = job("create-user", ["airflow", "users", "create"], 0)
    errors = checks.check_hooks(topology([migrate, same_wave]))
    assert len(errors) == 1 and "races the migration" in errors[0], errors
    assert checks.check_hooks(topology([migrate, job("create-user", ["airflow"], 1)])) == []
