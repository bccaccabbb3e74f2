"""The db-urls check (cluster/tools/checks/db_urls.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, deployment, obj, topology


def test_db_urls_flag_a_scheme_whose_driver_the_image_lacks(tmp_path):
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["image"] = "docker.io/realtor-mlops/airflow:" + "0" * 40
    ref = {"secretKeyRef": {"name": "airflow-metadata", "key": "connection"}}
    pod["containers"][0]["env"] = [
        {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "valueFrom": ref}
    ]
    topo = topology([obj(deployment(namespace="airflow", pod=pod))])
    script = tmp_path / "create-secrets.sh"
    script.write_text(
        'apply_secret airflow airflow-metadata Opaque \\\n  "connection=postgresql://a:b@h/airflow"\n'
    )
    errors = checks.check_db_urls(topo, script=script)
    assert errors and "psycopg" in errors[0] and "images/airflow/requirements.txt" in errors[0]
    script.write_text(
        'apply_secret airflow airflow-metadata Opaque \\\n  "connection=postgresql+psycopg2://a:b@h/airflow"\n'
    )
    assert checks.check_db_urls(topo, script=script) == []
    assert "no image of ours reads" in checks.check_db_urls(topology([]), script=script)[0]
    assert checks.driver_for("postgresql", {"sqlalchemy": "2.0.40"}) == "psycopg2"
