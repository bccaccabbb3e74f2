"""The images check (cluster/tools/checks/images.py)."""

from __future__ import annotations

import copy

from check_helpers import RESTRICTED_POD, checks, deployment, obj, topology


def test_images_built_equal_images_deployed_both_ways():
    pod = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["image"] = "docker.io/realtor-mlops/serving:" + "a" * 40
    serving = obj(deployment(pod=pod))
    built = {"serving": {}, "fetch": {}}
    dag = {"fetch": "fetch"}
    assert checks.check_images(topology([serving]), built, dag, {"serving", "fetch"}) == []
    unused = checks.check_images(topology([serving]), built | {"record": {}}, dag, {"serving"})
    assert unused and "builds image record, which no rendered object" in unused[0], unused
    unbuilt = checks.check_images(topology([serving]), {"serving": {}}, dag, set())
    assert unbuilt == [
        "the DAG's task fetch (dags/realtor/specs.py): runs image fetch, which "
        ".github/workflows/images.yaml does not build"
    ]
    orphan = checks.check_images(topology([serving]), built, dag, {"serving", "fetch", "old"})
    assert orphan == ["images/old/: a folder of no image the workflow builds: remove it"]
