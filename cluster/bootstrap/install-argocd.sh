#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install Argo CD (pinned chart) and hand the cluster over to GitOps: the AppProject
# and the root application (app of apps) of one topology. Run it once, on a machine
# with kubectl + helm pointed at the new cluster (KUBECONFIG=/etc/rancher/k3s/k3s.yaml).
#
# Usage: cluster/bootstrap/install-argocd.sh --topology single-node|two-node|three-node --image-tag SHA [--at-commit REPO_URL] [--dry-run]
# --image-tag: the 40-hex commit SHA whose images .github/workflows/images.yaml pushed; it is
#   set for every image of ours (cluster/tools/image_tags.py). Git must hold it (Argo CD syncs
#   git): when this checkout holds another tag, it is written and the script stops until you
#   commit and push it. The all-zero placeholder is refused.
# --at-commit REPO_URL: CI - the Applications sync this checkout's commit from REPO_URL, which
#   cannot hold its own SHA: the tag goes into the Applications instead of git (Git-Sync
#   follows GIT_BRANCH, default main, at that commit).
# Environment: DRY_RUN=1, KUBECONFIG, GIT_BRANCH. Secrets come first: cluster/secrets/create-secrets.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
# shellcheck source=versions.env
. "${CLUSTER_ENV:-${HERE}/versions.env}"

usage() { sed -n '6,15p' "$0" | sed 's/^# \{0,1\}//'; }

TOPOLOGY=""
IMAGE_TAG=""
AT_COMMIT_REPO=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --topology) TOPOLOGY="${2:?--topology needs a name}"; shift ;;
    --image-tag) IMAGE_TAG="${2:?--image-tag needs a commit SHA}"; shift ;;
    --at-commit) AT_COMMIT_REPO="${2:?--at-commit needs the repository URL}"; shift ;;
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
[[ -n "${IMAGE_TAG}" ]] || die "--image-tag SHA is required: the commit SHA whose images .github/workflows/images.yaml pushed (git rev-parse HEAD once its run passed)"
[[ "${IMAGE_TAG}" =~ ^[0-9a-f]{40}$ && "${IMAGE_TAG}" != "$(printf '0%.0s' {1..40})" ]] ||
  die "--image-tag ${IMAGE_TAG}: not a published tag (the all-zero placeholder never pulls); pass the 40-hex commit SHA whose images .github/workflows/images.yaml pushed"
TAGS=(python3 "${REPO}/cluster/tools/image_tags.py")

is_dry_run && say "DRY RUN: nothing in the cluster will change."
if [[ -z "${AT_COMMIT_REPO}" ]]; then
  step "0. Image tags in git: ${IMAGE_TAG}"
  explain "Every image of ours (MLflow, serving, UI, data API, Airflow, pipeline tasks) at this tag."
  if ! "${TAGS[@]}" check "${IMAGE_TAG}" >/dev/null; then
    if is_dry_run; then
      say "[dry-run] would run: ${TAGS[*]} set ${IMAGE_TAG}, then stop until it is committed and pushed"
    else
      "${TAGS[@]}" set "${IMAGE_TAG}"
      die "image tags set to ${IMAGE_TAG} in this checkout: commit and push them (Argo CD syncs git, not this checkout), then run this again"
    fi
  fi
fi
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

if [[ -n "${AT_COMMIT_REPO}" ]]; then
  COMMIT="$(git -C "${REPO}" rev-parse HEAD)"
  step "4. Every Application at ${COMMIT} of ${AT_COMMIT_REPO}, our images at ${IMAGE_TAG}"
  explain "The root app points its children at main; drop it and apply them at this commit."
  run kubectl -n argocd patch application root --type json -p '[{"op":"remove","path":"/metadata/finalizers"}]' || true
  run kubectl -n argocd delete application root --ignore-not-found
  root_path="$(awk '/path:/ {print $2}' "${ROOT_APP}")"
  if is_dry_run; then
    say "[dry-run] would run: kubectl kustomize ${root_path} | sed (targetRevision ${COMMIT}, repoURL ${AT_COMMIT_REPO}) | kubectl apply -f -"
  else
    kubectl kustomize --load-restrictor LoadRestrictionsNone "${REPO}/${root_path}" |
      sed -e "s|targetRevision: main|targetRevision: ${COMMIT}|" \
        -e "s|https://github.com/realtor-mlops/realtor-mlops.git|${AT_COMMIT_REPO}|" |
      kubectl apply -f -
  fi
  for app in mlflow data-api serving ui; do
    run kubectl -n argocd patch application "${app}" --type merge -p \
      "{\"spec\":{\"source\":{\"kustomize\":{\"images\":[\"docker.io/realtor-mlops/${app}:${IMAGE_TAG}\"]}}}}"
  done
  params="[{\"name\":\"defaultAirflowTag\",\"value\":\"${IMAGE_TAG}\"},"
  params+="{\"name\":\"dags.gitSync.repo\",\"value\":\"${AT_COMMIT_REPO}\"},"
  params+="{\"name\":\"dags.gitSync.branch\",\"value\":\"${GIT_BRANCH:-main}\"},"
  params+="{\"name\":\"dags.gitSync.rev\",\"value\":\"${COMMIT}\"}]"
  run kubectl -n argocd patch application airflow --type json \
    -p "[{\"op\":\"add\",\"path\":\"/spec/sources/0/helm/parameters\",\"value\":${params}}]"
  patch="[{\"op\":\"add\",\"path\":\"/spec/source/kustomize\",\"value\":{\"patches\":[{\"target\":{\"kind\":\"ConfigMap\",\"name\":\"pipeline-env\"},"
  patch+="\"patch\":\"[{\\\"op\\\":\\\"replace\\\",\\\"path\\\":\\\"/data/PIPELINE_IMAGE_TAG\\\",\\\"value\\\":\\\"${IMAGE_TAG}\\\"}]\"}]}}]"
  run kubectl -n argocd patch application pipeline --type json -p "${patch}"
fi

step "Done"
say "Watch: kubectl -n argocd get applications -w"
say "Admin password: kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d"
