#!/usr/bin/env bats
# install-argocd.sh and create-secrets.sh in dry-run mode.

load helpers

setup() { setup_stubs; }

SHA=0123456789abcdef0123456789abcdef01234567

@test "install-argocd: pinned chart, our values, project and root app per topology" {
  for topo in single-node two-node three-node; do
    run "${BOOT}/install-argocd.sh" --topology "$topo" --image-tag "${SHA}"
    [ "$status" -eq 0 ]
    [[ "$output" == *"image_tags.py set ${SHA}, then stop until it is committed and pushed"* ]]
    [[ "$output" == *"helm upgrade --install argocd argo/argo-cd --version 10.1.1"* ]]
    [[ "$output" == *"helm-values/argo-cd/values.yaml"* ]]
    [[ "$output" == *"kubectl apply -f ${REPO}/cluster/projects/realtor.yaml"* ]]
    [[ "$output" == *"kubectl apply -f ${REPO}/cluster/bootstrap/root/${topo}.yaml"* ]]
  done
  run "${BOOT}/install-argocd.sh" --topology four-node --image-tag "${SHA}"
  [ "$status" -ne 0 ]
  assert_nothing_changed
}

@test "install-argocd: refuses the placeholder tag, or none, with one line saying what to do" {
  for topo in single-node two-node three-node; do
    run "${BOOT}/install-argocd.sh" --topology "$topo" --image-tag 0000000000000000000000000000000000000000
    [ "$status" -ne 0 ]
    [[ "$output" == *"not a published tag"*"pass the 40-hex commit SHA whose images"* ]]
    [ "$(grep -c . <<<"$output")" -eq 1 ]
    run "${BOOT}/install-argocd.sh" --topology "$topo"
    [ "$status" -ne 0 ]
    [[ "$output" == *"--image-tag SHA is required"* ]]
  done
  assert_nothing_changed
}

@test "install-argocd: sets the tag for every image of ours in git, stops until pushed, then goes on" {
  copy="${BATS_TEST_TMPDIR}/repo"
  mkdir -p "${copy}"
  cp -r "${REPO}/cluster" "${REPO}/helm-values" "${copy}/"
  unset DRY_RUN
  for topo in single-node two-node three-node; do
    run "${copy}/cluster/bootstrap/install-argocd.sh" --topology "$topo" --image-tag "${SHA}"
    [ "$status" -ne 0 ]
    [[ "$output" == *"commit and push them"* ]]
    run python3 "${copy}/cluster/tools/image_tags.py" check "${SHA}"
    [ "$status" -eq 0 ]
    # every image of ours: MLflow, serving, UI, data API, Airflow, the pipeline's tasks
    grep -q "realtor-mlops/mlflow:${SHA}" "${copy}/cluster/apps/mlflow/base/mlflow.yaml"
    grep -q "defaultAirflowTag: \"${SHA}\"" "${copy}/helm-values/airflow/values.yaml"
    grep -q "PIPELINE_IMAGE_TAG=${SHA}" "${copy}/cluster/apps/pipeline/base/pipeline.env"
    for app in serving ui data-api; do grep -q "newTag: \"${SHA}\"" "${copy}/cluster/apps/${app}/base/kustomization.yaml"; done
    # git holds the tag now: the install goes on (kubectl is a stub that fails: stop there)
    run "${copy}/cluster/bootstrap/install-argocd.sh" --topology "$topo" --image-tag "${SHA}"
    [[ "$output" == *"== 1. Namespace argocd"* ]]
    git -C "${copy}" checkout -q -- . 2>/dev/null || cp -r "${REPO}/cluster" "${REPO}/helm-values" "${copy}/"
  done
}

@test "install-argocd --at-commit (CI): the Applications at this commit, every image of ours at the tag" {
  run "${BOOT}/install-argocd.sh" --topology single-node --image-tag "${SHA}" --at-commit https://example.com/fork.git
  [ "$status" -eq 0 ]
  [[ "$output" != *"image_tags.py set"* ]]
  for app in mlflow data-api serving ui; do
    [[ "$output" == *"patch application ${app} "*"realtor-mlops/${app}:${SHA}"* ]]
  done
  [[ "$output" == *"patch application airflow "*"defaultAirflowTag"*"${SHA}"* ]]
  [[ "$output" == *"patch application pipeline "*"PIPELINE_IMAGE_TAG"*"${SHA}"* ]]
  assert_nothing_changed
}

@test "create-secrets: every Secret planned, no value ever printed" {
  run "${REPO}/cluster/secrets/create-secrets.sh"
  [ "$status" -eq 0 ]
  for s in "data create secret generic pg-realtor" "data create secret generic pg-airflow" \
    "data create secret generic pg-mlflow" "storage create secret generic seaweedfs-s3-config" \
    "longhorn-system create secret generic longhorn-backup-s3" "data create secret generic pg-backup-s3" \
    "mlflow create secret generic mlflow-secrets" "airflow create secret generic airflow-metadata" \
    "pipeline create secret generic pipeline-secrets" "traefik create secret generic traefik-dashboard-auth" \
    "monitoring create secret generic grafana-admin" "mlflow create secret generic mlflow-login --type=kubernetes.io/basic-auth" \
    "mlflow create secret generic mlflow-basic-auth --type=Opaque --from-literal=users=<redacted>" \
    "apps create secret generic data-api-login" "apps create secret generic data-api-basic-auth" \
    "apps create secret generic serving-admin --type=Opaque --from-literal=token=<redacted>"; do
    [[ "$output" == *"kubectl -n $s"* ]]
  done
  [[ "$output" != *'$apr1$'* ]]
  [[ "$output" != *"postgresql://"* ]]
  run grep -E '[0-9a-f]{48}' <<<"$output"
  [ "$status" -ne 0 ]
  assert_nothing_changed
}

@test "create-secrets: Docker Hub and git credentials only from the environment, redacted" {
  DOCKERHUB_USERNAME=someone DOCKERHUB_TOKEN=dckr_pat_secret GIT_USERNAME=bot GIT_TOKEN=ghp_secret \
    run "${REPO}/cluster/secrets/create-secrets.sh" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"create secret docker-registry dockerhub-pull"* ]]
  [[ "$output" == *"repo-realtor-mlops"* ]]
  [[ "$output" != *"dckr_pat_secret"* && "$output" != *"ghp_secret"* ]]
  assert_nothing_changed
}

@test "every script passes shellcheck" {
  sc="${REPO}/.venv/bin/shellcheck"
  [[ -x "$sc" ]] || sc="$(command -v shellcheck)"
  cd "${REPO}"
  run "$sc" -x cluster/bootstrap/*.sh cluster/secrets/*.sh cluster/validate.sh
  [ "$status" -eq 0 ]
}
