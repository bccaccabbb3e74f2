"""What the cluster would refuse or never finish, checked on a rendered topology.

Each check takes a render.Topology and returns a list of error strings (empty = pass); one
module per check, each says what it checks in its docstring:

* schemas   - strict schema of every object (core kinds and every custom resource).
* psa       - Pod Security admission at each namespace's levels on every pod template.
* hooks     - Helm hooks as Argo CD runs them, in phase order.
* waves     - sync waves against health (CRDs, webhooks, pools, classes, Secrets, images).
* values    - every key we set in helm-values is one the chart reads.
* resources - DAG pods fit the pipeline quota; requests fit the topology's nodes.
* db-urls   - every database URL names a driver the reading image installs.
* project   - the AppProject permits every Application and object.
* refs      - routes, scrapes and Services lead somewhere.
* labels    - the versions our files name are those the charts and images ship.
* images    - the images built are the images deployed, both ways.
* network   - every declared flow (scrapes, routes, service URLs) passes the NetworkPolicies.
* secrets   - every Secret an object names exists on a first sync without optional credentials.

Shared helpers: common.py (applied objects, pod templates), pod_refs.py (what a pod needs,
what create-secrets.sh writes).
"""

from __future__ import annotations

from .common import APPLIED, Check, k8s_version
from .db_urls import check_db_urls, driver_for
from .hooks import check_hooks
from .images import all_images, check_images, image_problems, workflow_images
from .labels import check_labels
from .network import check_network
from .pod_refs import script_secret_keys
from .project import check_project
from .psa import check_psa
from .refs import check_refs
from .resources import (
    MAX_CPU_SHARE,
    MAX_MEM_SHARE,
    VM_CPU_M,
    VM_MEM_MI,
    budget_rows,
    check_node_budget,
    check_pipeline_quota,
    check_resources,
    with_limit_range,
)
from .schemas import check_schemas
from .secrets import check_secrets
from .values import check_values
from .waves import check_waves

CHECKS: dict[str, Check] = {
    "schemas": check_schemas,
    "psa": check_psa,
    "hooks": check_hooks,
    "waves": check_waves,
    "values": check_values,
    "resources": check_resources,
    "db-urls": check_db_urls,
    "labels": check_labels,
    "project": check_project,
    "refs": check_refs,
    "secrets": check_secrets,
    "images": check_images,
    "network": check_network,
}

__all__ = [
    "APPLIED",
    "CHECKS",
    "MAX_CPU_SHARE",
    "MAX_MEM_SHARE",
    "VM_CPU_M",
    "VM_MEM_MI",
    "all_images",
    "budget_rows",
    "check_db_urls",
    "check_hooks",
    "check_images",
    "check_labels",
    "check_network",
    "check_node_budget",
    "check_pipeline_quota",
    "check_project",
    "check_psa",
    "check_refs",
    "check_resources",
    "check_schemas",
    "check_secrets",
    "check_values",
    "check_waves",
    "driver_for",
    "image_problems",
    "k8s_version",
    "script_secret_keys",
    "with_limit_range",
    "workflow_images",
]
