#!/usr/bin/env bash
# Render and schema-check everything the cluster side ships, offline (no cluster, no
# network): the one entry point for `make validate`, `make test` and CI.
#
#   1. yamllint           cluster/, helm-values/, .github/workflows/
#   2. actionlint         .github/workflows/
#   3. cluster checks     each topology rendered as Argo CD would (every chart with Helm's
#                         engine, our trees with kustomize) and checked: strict schemas, Pod
#                         Security, hooks, waves, values keys, quota and node budget, DB URLs,
#                         version labels, AppProject permissions, routes and scrapes
#                         (cluster/tools/validate_manifests.py; checks/ holds one module per check)
#      route auth         every way in has an auth middleware or is in cluster/public-routes.yaml
#   4. checkov            security checks on the manifests (skips justified in .checkov.yaml)
#   5. shellcheck         every script
#   6. bats               the bootstrap scripts in dry-run mode, all three topologies
#   7. pytest             tests/cluster (every check's negative tests, preflight, manifests, and
#                         make cluster-run: our workloads started from their specs, smoke-called)
#
# Charts and schemas: $SHARED_DIR, else .cache/vendor (`make vendor`), else ../shared
# (cluster/tools/vendor.py). Tools: PYTHON, CHECKOV, SHELLCHECK, BATS override the defaults
# below. Exit status: non-zero if any step fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"

pick() { # pick VAR default fallback-on-PATH
  local current="$1" default="$2" fallback="$3"
  if [[ -n "${current}" ]]; then printf '%s' "${current}"
  elif [[ -x "${default}" ]]; then printf '%s' "${default}"
  else command -v "${fallback}" || true
  fi
}
PYTHON="$(pick "${PYTHON:-}" "${REPO}/.venv/bin/python" python3)"
CHECKOV="$(pick "${CHECKOV:-}" "${REPO}/.venv-checkov/bin/checkov" checkov)"
SHELLCHECK="$(pick "${SHELLCHECK:-}" "${REPO}/.venv/bin/shellcheck" shellcheck)"
BATS="$(pick "${BATS:-}" "${REPO}/node_modules/bats/bin/bats" bats)"
YAMLLINT="$(pick "${YAMLLINT:-}" "${REPO}/.venv/bin/yamllint" yamllint)"
ACTIONLINT="$(pick "${ACTIONLINT:-}" "${REPO}/.venv/bin/actionlint" actionlint)"

FAILED=()
step() {
  local name="$1" start
  shift
  printf '\n=== %s\n' "${name}"
  start=${SECONDS}
  if "$@"; then
    printf -- '--- %s: ok (%ss)\n' "${name}" $((SECONDS - start))
  else
    printf -- '--- %s: FAILED (%ss)\n' "${name}" $((SECONDS - start))
    FAILED+=("${name}")
  fi
}
need() { [[ -n "$1" ]] || { echo "missing tool: $2" >&2; return 1; }; }

# One line and exit 1 when neither .cache/vendor nor ../shared holds the charts and schemas.
"${PYTHON}" cluster/tools/vendor.py where >/dev/null

YAML_DIRS=(cluster helm-values .yamllint.yaml)
[[ -d .github/workflows ]] && YAML_DIRS+=(.github/workflows)
run_yamllint() { need "${YAMLLINT}" yamllint && "${YAMLLINT}" -c .yamllint.yaml "${YAML_DIRS[@]}"; }
run_actionlint() {
  need "${ACTIONLINT}" actionlint && "${ACTIONLINT}" -shellcheck="${SHELLCHECK}" .github/workflows/*.yaml
}
run_checkov() { need "${CHECKOV}" checkov && (cd cluster && BC_SKIP_MAPPING=TRUE "${CHECKOV}" --config-file .checkov.yaml -d .); }
run_shellcheck() {
  need "${SHELLCHECK}" shellcheck &&
    "${SHELLCHECK}" -x cluster/bootstrap/*.sh cluster/secrets/*.sh cluster/validate.sh tests/cluster/bats/helpers.bash
}
run_bats() { need "${BATS}" bats && "${BATS}" tests/cluster/bats; }

step "yamllint" run_yamllint
step "actionlint" run_actionlint
step "cluster checks (charts rendered; schemas, PSA, hooks, waves, values, resources, DB URLs, labels, project, refs, secrets, images, network)" \
  "${PYTHON}" cluster/tools/validate_manifests.py
step "route authentication (three topologies)" "${PYTHON}" cluster/tools/route_auth.py --quiet
step "checkov" run_checkov
step "shellcheck" run_shellcheck
step "bats (dry runs, three topologies)" run_bats
step "pytest tests/cluster" "${PYTHON}" -m pytest -q -p no:cacheprovider tests/cluster

if [[ ${#FAILED[@]} -gt 0 ]]; then
  printf '\nFAILED: %s\n' "${FAILED[*]}"
  exit 1
fi
printf '\nAll cluster checks passed.\n'
