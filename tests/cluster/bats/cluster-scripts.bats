#!/usr/bin/env bats
# install-argocd.sh and create-secrets.sh in dry-run mode.

load helpers

setup() { setup_stubs; }

@test "install-argocd: pinned chart, our values, project and root app per topology" {
  for topo in single-node two-node three-node; do
    run "${BOOT}/install-argocd.sh" --topology "$topo"
    [ "$status" -eq 0 ]
    [[ "$output" == *"helm upgrade --install argocd argo/argo-cd --version 10.1.1"* ]]
    [[ "$output" == *"helm-values/argo-cd/values.yaml"* ]]
    [[ "$output" == *"kubectl apply -f ${REPO}/cluster/projects/realtor.yaml"* ]]
    [[ "$output" == *"kubectl apply -f ${REPO}/cluster/bootstrap/root/${topo}.yaml"* ]]
  done
  run "${BOOT}/install-argocd.sh" --topology four-node
  [ "$status" -ne 0 ]
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
