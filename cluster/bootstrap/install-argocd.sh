#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install Argo CD (pinned chart) and hand the cluster over to GitOps: the AppProject
# and the root application (app of apps) of one topology. Run it once, on a machine
# with kubectl + helm pointed at the new cluster (KUBECONFIG=/etc/rancher/k3s/k3s.yaml).
#
# Usage: cluster/bootstrap/install-argocd.sh --topology single-node|two-node|three-node [--dry-run]
# Environment: DRY_RUN=1, KUBECONFIG. Secrets come first: cluster/secrets/create-secrets.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
# shellcheck source=versions.env
. "${CLUSTER_ENV:-${HERE}/versions.env}"

usage() { sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//'; }

TOPOLOGY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --topology) TOPOLOGY="${2:?--topology needs a name}"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
TOPOLOGY="${TOPOLOGY%.conf}"
case "${TOPOLOGY}" in
  single-node | two-node | three-node) ;;
  *) usage >&2; die "--topology must be single-node, two-node or three-node" ;;
esac
ROOT_APP="${REPO}/cluster/bootstrap/root/${TOPOLOGY}.yaml"
[[ -r "${ROOT_APP}" ]] || die "missing ${ROOT_APP}"

is_dry_run && say "DRY RUN: nothing in the cluster will change."
step "1. Namespace argocd (Pod Security labels)"
run kubectl apply -f "${REPO}/cluster/bootstrap/argocd/namespace.yaml"

step "2. Argo CD chart ${ARGOCD_CHART_VERSION}"
explain "The same chart version and values as the argo-cd Application, which takes over afterwards."
run helm repo add argo "${ARGOCD_CHART_REPO}" --force-update
run helm upgrade --install argocd argo/argo-cd --version "${ARGOCD_CHART_VERSION}" \
  --namespace argocd -f "${REPO}/helm-values/argo-cd/values.yaml" --wait --timeout 10m

step "3. AppProject and root application (${TOPOLOGY})"
explain "From here on Argo CD syncs cluster/apps/* from git, wave by wave."
run kubectl apply -f "${REPO}/cluster/projects/realtor.yaml"
run kubectl apply -f "${ROOT_APP}"

step "Done"
say "Watch: kubectl -n argocd get applications -w"
say "Admin password: kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d"
