#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR/../bootstrap
# Create every Secret the platform needs, from generated random values. Nothing secret
# is ever committed: run this once after K3s is up and before (or right after) the root
# application. Idempotent: an existing Secret is kept (passwords stay stable) unless
# ROTATE=1; secrets derived from a password (connection URLs) reuse the stored one.
#
# Usage: cluster/secrets/create-secrets.sh [--dry-run]
# Environment:
#   DRY_RUN=1                      print the kubectl commands (values redacted), change nothing
#   ROTATE=1                       regenerate and overwrite every generated Secret
#   DOCKERHUB_USERNAME/DOCKERHUB_TOKEN  optional: Docker Hub pull secret (rate limits) for
#                                  the kubelet (pods name it as an optional imagePullSecret)
#   GIT_USERNAME/GIT_TOKEN         optional: repository credentials for Argo CD and the
#                                  Image Updater's git write-back
#   REPO_URL                       the git URL Argo CD syncs (default below)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../bootstrap/lib.sh
. "${HERE}/../bootstrap/lib.sh"

ROTATE="${ROTATE:-0}"
REPO_URL="${REPO_URL:-https://github.com/realtor-mlops/realtor-mlops.git}"
PG_HOST="realtor-pg-rw.data.svc.cluster.local"
S3_ENDPOINT="http://seaweedfs-all-in-one.storage.svc.cluster.local:8333"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
  shift
done

command -v openssl >/dev/null || die "openssl is required"
is_dry_run || command -v kubectl >/dev/null || die "kubectl is required"
is_dry_run && say "DRY RUN: nothing in the cluster will change; values are generated but never shown."

secret_exists() { ! is_dry_run && kubectl -n "$1" get secret "$2" >/dev/null 2>&1; }

# stored_or_new NS NAME KEY: the stored value of a key, or a new random one.
stored_or_new() {
  if [[ "${ROTATE}" != "1" ]] && secret_exists "$1" "$2"; then
    kubectl -n "$1" get secret "$2" -o "jsonpath={.data.$3}" | base64 -d
  else
    openssl rand -hex 24
  fi
}

# apply_secret NS NAME TYPE KEY=VALUE...: create or update, printing keys only.
apply_secret() {
  local ns="$1" name="$2" type="$3" shown=() args=() pair
  shift 3
  for pair in "$@"; do
    args+=("--from-literal=${pair}")
    shown+=("--from-literal=${pair%%=*}=<redacted>")
  done
  if [[ "${ROTATE}" != "1" ]] && secret_exists "${ns}" "${name}"; then
    say "kept: secret ${ns}/${name} (ROTATE=1 to regenerate)"
    return 0
  fi
  if is_dry_run; then
    say "[dry-run] would run: kubectl -n ${ns} create secret generic ${name} --type=${type} ${shown[*]} --dry-run=client -o yaml | kubectl apply -f -"
    return 0
  fi
  ensure_namespace "${ns}"
  kubectl -n "${ns}" create secret generic "${name}" "--type=${type}" "${args[@]}" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  say "applied: secret ${ns}/${name} (${type}; keys: ${shown[*]//--from-literal=/})"
}

# The namespaces app (Argo CD) labels them later; a Secret needs its namespace now.
ensure_namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
}

label_secret() {
  run kubectl -n "$1" label secret "$2" "$3" --overwrite
}

step "1. Postgres roles (namespace data, CloudNativePG)"
PG_REALTOR="$(stored_or_new data pg-realtor password)"
PG_AIRFLOW="$(stored_or_new data pg-airflow password)"
PG_MLFLOW="$(stored_or_new data pg-mlflow password)"
apply_secret data pg-realtor kubernetes.io/basic-auth username=realtor "password=${PG_REALTOR}"
apply_secret data pg-airflow kubernetes.io/basic-auth username=airflow "password=${PG_AIRFLOW}"
apply_secret data pg-mlflow kubernetes.io/basic-auth username=mlflow "password=${PG_MLFLOW}"

step "2. S3 identities (SeaweedFS) - one per consumer, each limited to its bucket"
S3_ADMIN="$(stored_or_new storage seaweedfs-s3-keys admin)"
S3_MLFLOW="$(stored_or_new storage seaweedfs-s3-keys mlflow)"
S3_PIPELINE="$(stored_or_new storage seaweedfs-s3-keys pipeline)"
S3_LONGHORN="$(stored_or_new storage seaweedfs-s3-keys longhorn)"
S3_PGBACKUP="$(stored_or_new storage seaweedfs-s3-keys pgbackup)"
S3_AIRFLOW="$(stored_or_new storage seaweedfs-s3-keys airflow)"
identity() { # name secret bucket
  printf '{"name":"%s","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Read:%s","Write:%s","List:%s","Tagging:%s"]}' \
    "$1" "$1" "$2" "$3" "$3" "$3" "$3"
}
S3_CONFIG="$(printf '{"identities":[{"name":"admin","credentials":[{"accessKey":"admin","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]},%s,%s,%s,%s,%s]}' \
  "${S3_ADMIN}" "$(identity mlflow "${S3_MLFLOW}" mlflow)" "$(identity pipeline "${S3_PIPELINE}" realtor-data)" \
  "$(identity longhorn "${S3_LONGHORN}" longhorn-backups)" "$(identity pgbackup "${S3_PGBACKUP}" pg-backups)" \
  "$(identity airflow "${S3_AIRFLOW}" airflow-logs)")"
apply_secret storage seaweedfs-s3-keys Opaque "admin=${S3_ADMIN}" "mlflow=${S3_MLFLOW}" \
  "pipeline=${S3_PIPELINE}" "longhorn=${S3_LONGHORN}" "pgbackup=${S3_PGBACKUP}" "airflow=${S3_AIRFLOW}"
apply_secret storage seaweedfs-s3-config Opaque "seaweedfs_s3_config=${S3_CONFIG}"
apply_secret longhorn-system longhorn-backup-s3 Opaque AWS_ACCESS_KEY_ID=longhorn \
  "AWS_SECRET_ACCESS_KEY=${S3_LONGHORN}" "AWS_ENDPOINTS=${S3_ENDPOINT}"
apply_secret data pg-backup-s3 Opaque ACCESS_KEY_ID=pgbackup "ACCESS_SECRET_KEY=${S3_PGBACKUP}"

step "3. MLflow (namespace mlflow)"
apply_secret mlflow mlflow-secrets Opaque \
  "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:${PG_MLFLOW}@${PG_HOST}:5432/mlflow" \
  AWS_ACCESS_KEY_ID=mlflow "AWS_SECRET_ACCESS_KEY=${S3_MLFLOW}"

step "4. Airflow (namespace airflow)"
# Airflow derives its async engine's URL (asyncpg) from the sync one unless
# [database] sql_alchemy_conn_async is set, and asyncpg refuses libpq's sslmode
# ("connect() got an unexpected keyword argument 'sslmode'"): the async URL is a Secret of its own,
# with asyncpg's own TLS parameter (ssl=require), read as AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC.
apply_secret airflow airflow-metadata Opaque \
  "connection=postgresql+psycopg2://airflow:${PG_AIRFLOW}@${PG_HOST}:5432/airflow?sslmode=require"
apply_secret airflow airflow-metadata-async Opaque \
  "connection=postgresql+asyncpg://airflow:${PG_AIRFLOW}@${PG_HOST}:5432/airflow?ssl=require"
apply_secret airflow airflow-fernet-key Opaque "fernet-key=$(openssl rand -base64 32 | tr '+/' '-_')"
apply_secret airflow airflow-api-secret-key Opaque "api-secret-key=$(openssl rand -hex 32)"
apply_secret airflow airflow-jwt-secret Opaque "jwt-secret=$(openssl rand -hex 32)"
apply_secret airflow airflow-admin Opaque username=admin "password=$(openssl rand -hex 16)"
# Remote task logs (helm-values/airflow: logging.remote_log_conn_id s3_logs)
apply_secret airflow airflow-logs-s3 Opaque \
  "connection={\"conn_type\":\"aws\",\"login\":\"airflow\",\"password\":\"${S3_AIRFLOW}\",\"extra\":{\"endpoint_url\":\"${S3_ENDPOINT}\",\"region_name\":\"us-east-1\"}}"

step "5. Pipeline tasks (namespace pipeline): pipeline-secrets, read by env_from"
apply_secret pipeline pipeline-secrets Opaque \
  "LEDGER_URL=postgresql+psycopg://realtor:${PG_REALTOR}@${PG_HOST}:5432/realtor?sslmode=require" \
  AWS_ACCESS_KEY_ID=pipeline "AWS_SECRET_ACCESS_KEY=${S3_PIPELINE}"

step "6. Apps (namespace apps): serving logs predictions to the ledger and the lake; the UI reads both"
apply_secret apps apps-secrets Opaque \
  "LEDGER_URL=postgresql+psycopg://realtor:${PG_REALTOR}@${PG_HOST}:5432/realtor?sslmode=require" \
  AWS_ACCESS_KEY_ID=pipeline "AWS_SECRET_ACCESS_KEY=${S3_PIPELINE}"

step "7. Traefik dashboard basic auth and Grafana admin"
DASH_PASSWORD="$(openssl rand -hex 16)"
DASH_NEW=0 # the password is shown only when it is the one stored (not when the Secret is kept)
{ [[ "${ROTATE}" == "1" ]] || ! secret_exists traefik traefik-dashboard-auth; } && DASH_NEW=1
apply_secret traefik traefik-dashboard-auth Opaque "users=admin:$(openssl passwd -apr1 "${DASH_PASSWORD}")"
is_dry_run || [[ "${DASH_NEW}" != "1" ]] ||
  say "Traefik dashboard: user admin, password ${DASH_PASSWORD} (shown once; store it in your password manager)"
apply_secret monitoring grafana-admin Opaque admin-user=admin "admin-password=$(openssl rand -hex 16)"

step "8. Registry and git credentials (optional)"
if [[ -n "${DOCKERHUB_USERNAME:-}" && -n "${DOCKERHUB_TOKEN:-}" ]]; then
  for ns in argocd apps pipeline airflow; do
    if is_dry_run; then
      say "[dry-run] would run: kubectl -n ${ns} create secret docker-registry dockerhub-pull --docker-server=https://index.docker.io/v1/ --docker-username=<redacted> --docker-password=<redacted> --dry-run=client -o yaml | kubectl apply -f -"
    else
      ensure_namespace "${ns}"
      kubectl -n "${ns}" create secret docker-registry dockerhub-pull --docker-server=https://index.docker.io/v1/ \
        "--docker-username=${DOCKERHUB_USERNAME}" "--docker-password=${DOCKERHUB_TOKEN}" \
        --dry-run=client -o yaml | kubectl apply -f - >/dev/null
      say "applied: secret ${ns}/dockerhub-pull (kubernetes.io/dockerconfigjson)"
    fi
  done
else
  say "skipped: DOCKERHUB_USERNAME/DOCKERHUB_TOKEN not set (anonymous pulls are rate limited;"
  say "         template: cluster/secrets/dockerhub-pull-secret.template.yaml)"
fi
if [[ -n "${GIT_USERNAME:-}" && -n "${GIT_TOKEN:-}" ]]; then
  apply_secret argocd repo-realtor-mlops Opaque type=git "url=${REPO_URL}" \
    "username=${GIT_USERNAME}" "password=${GIT_TOKEN}"
  label_secret argocd repo-realtor-mlops argocd.argoproj.io/secret-type=repository
else
  say "skipped: GIT_USERNAME/GIT_TOKEN not set (needed for a private repo and for the"
  say "         Image Updater's git write-back)"
fi
step "9. Route logins: basic auth for MLflow and the data API, serving's admin token"
# Traefik's BasicAuth middleware reads an Opaque Secret with exactly one key holding
# user:hash lines; it accepts MD5 (apr1), SHA1 and bcrypt hashes. openssl makes apr1 (no
# htpasswd on a Rocky host). The password is random (192 bits), so a fast hash is no
# weakness, and Traefik checks it on every request, where bcrypt would cost CPU each time.
# The login itself is kept in <name>-login (username, password) to read back with kubectl.
route_login() { # NS NAME USER: Secrets NAME-login and NAME-basic-auth (the middleware's)
  local ns="$1" name="$2" user="$3" password
  if [[ "${ROTATE}" != "1" ]] && secret_exists "${ns}" "${name}-basic-auth" &&
    ! secret_exists "${ns}" "${name}-login"; then
    warn "${ns}/${name}-basic-auth exists without ${name}-login: its password is unknown; ROTATE=1 to regenerate"
  fi
  password="$(stored_or_new "${ns}" "${name}-login" password)"
  apply_secret "${ns}" "${name}-login" kubernetes.io/basic-auth "username=${user}" "password=${password}"
  apply_secret "${ns}" "${name}-basic-auth" Opaque \
    "users=${user}:$(printf '%s\n' "${password}" | openssl passwd -apr1 -stdin)"
}
route_login mlflow mlflow admin
route_login apps data-api admin
# serving reads it from SERVING_ADMIN_TOKEN: POST /admin/reload with "Authorization: Bearer <token>"
apply_secret apps serving-admin Opaque "token=$(stored_or_new apps serving-admin token)"

step "Done"
