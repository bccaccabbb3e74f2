#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install K3s on one node of a topology. Run it on every node, first node first.
#
# Usage: sudo cluster/bootstrap/install-k3s.sh --topology FILE --node NAME [--dry-run]
# Environment:
#   K3S_TOKEN_FILE  file holding the join token (preferred), or
#   K3S_TOKEN       the token itself; one of them is required on multi-node topologies.
#                   Make one with `openssl rand -hex 32`; keep it out of git.
#   DRY_RUN=1       print the commands and the files, change nothing
#   ROOT_DIR        write files under another root (tests)
#   CLUSTER_ENV     versions/network file (default: versions.env next to this script)
#   PYTHON          interpreter for the preflight (default python3)
#
# It writes /etc/rancher/k3s/config.yaml (no long flag strings), runs the CIDR preflight
# (refuses to install when a node IP, the gateway or a route overlaps the cluster or
# service CIDR), then runs the pinned K3s installer.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
CLUSTER_ENV="${CLUSTER_ENV:-${HERE}/versions.env}"
# shellcheck source=versions.env
. "${CLUSTER_ENV}"
PYTHON="${PYTHON:-python3}"

usage() { sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'; }

TOPOLOGY=""
NODE=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --topology) TOPOLOGY="${2:?--topology needs a file}"; shift ;;
    --node) NODE="${2:?--node needs a name}"; shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ -n "${TOPOLOGY}" && -n "${NODE}" ]] || { usage >&2; die "--topology and --node are required"; }
[[ -r "${TOPOLOGY}" ]] || die "cannot read topology file ${TOPOLOGY}"

# --- read the topology -------------------------------------------------------------
NAMES=()
IPS=()
ROLES=()
while read -r name ip role extra; do
  [[ -z "${name}" || "${name}" == \#* ]] && continue
  [[ -z "${extra:-}" ]] || die "${TOPOLOGY}: expected 'name ip role', got: ${name} ${ip} ${role} ${extra}"
  case "${role}" in server | agent) ;; *) die "${TOPOLOGY}: role of ${name} must be server or agent" ;; esac
  for seen in "${NAMES[@]}"; do [[ "${seen}" != "${name}" ]] || die "${TOPOLOGY}: node ${name} listed twice"; done
  NAMES+=("${name}")
  IPS+=("${ip}")
  ROLES+=("${role}")
done <"${TOPOLOGY}"
[[ ${#NAMES[@]} -gt 0 ]] || die "${TOPOLOGY}: no nodes"
[[ "${ROLES[0]}" == "server" ]] || die "${TOPOLOGY}: the first node must be a server"
SERVERS=0
for role in "${ROLES[@]}"; do [[ "${role}" == "server" ]] && SERVERS=$((SERVERS + 1)); done
if [[ ${SERVERS} -gt 1 && $((SERVERS % 2)) -eq 0 ]]; then
  die "${TOPOLOGY}: ${SERVERS} servers: embedded etcd needs an odd number (1 or 3)"
fi
HA=0
[[ ${SERVERS} -gt 1 ]] && HA=1

INDEX=-1
for i in "${!NAMES[@]}"; do [[ "${NAMES[i]}" == "${NODE}" ]] && INDEX=${i}; done
[[ ${INDEX} -ge 0 ]] || die "node ${NODE} is not in ${TOPOLOGY} (nodes: ${NAMES[*]})"
NODE_IP="${IPS[INDEX]}"
ROLE="${ROLES[INDEX]}"
FIRST_IP="${IPS[0]}"
JOINS=0
[[ ${INDEX} -gt 0 ]] && JOINS=1

is_dry_run && say "DRY RUN: nothing on this host will change."
step "0. Checks"
explain "node ${NODE} (${NODE_IP}) is a ${ROLE}; topology ${TOPOLOGY##*/}: ${#NAMES[@]} node(s), ${SERVERS} server(s)"
require_rhel9
require_root

# --- token ---------------------------------------------------------------------------
TOKEN_PATH=/etc/rancher/k3s/cluster-token
TOKEN=""
if [[ -n "${K3S_TOKEN_FILE:-}" ]]; then
  [[ -r "${K3S_TOKEN_FILE}" ]] || die "K3S_TOKEN_FILE=${K3S_TOKEN_FILE} is not readable"
  TOKEN="$(tr -d '[:space:]' <"${K3S_TOKEN_FILE}")"
elif [[ -n "${K3S_TOKEN:-}" ]]; then
  TOKEN="${K3S_TOKEN}"
fi
if [[ -z "${TOKEN}" && ${#NAMES[@]} -gt 1 ]]; then
  die "multi-node topology: set K3S_TOKEN_FILE (or K3S_TOKEN) to the same secret on every node; make one with: openssl rand -hex 32"
fi

step "1. Preflight: cluster and service networks against this host and the LAN"
explain "Refuses when a node IP, the gateway or a local route overlaps ${CLUSTER_CIDR} or ${SERVICE_CIDR}."
PREFLIGHT_ARGS=(--cluster-cidr "${CLUSTER_CIDR}" --service-cidr "${SERVICE_CIDR}" --cluster-dns "${CLUSTER_DNS}" --lb-range "${LB_RANGE}")
for ip in "${IPS[@]}"; do PREFLIGHT_ARGS+=(--node-ip "${ip}"); done
if ! "${PYTHON}" "${HERE}/preflight.py" "${PREFLIGHT_ARGS[@]}"; then
  die "preflight failed: refusing to install K3s (see the collisions above; docs/cluster.md, troubleshooting)"
fi

step "2. /etc/rancher/k3s/config.yaml"
explain "Every setting lives in the config file; the networks come from ${CLUSTER_ENV##*/}, identical on every node."
config() {
  say "# Written by cluster/bootstrap/install-k3s.sh from ${TOPOLOGY##*/}; edit the topology, not this file."
  say "node-name: ${NODE}"
  say "node-ip: ${NODE_IP}"
  if [[ "${ROLE}" == "server" ]]; then
    say "advertise-address: ${NODE_IP}"
    say "cluster-cidr: ${CLUSTER_CIDR}"
    say "service-cidr: ${SERVICE_CIDR}"
    say "cluster-dns: ${CLUSTER_DNS}"
    say 'write-kubeconfig-mode: "0644"'
    say "disable:"
    say "  - traefik        # Traefik v3 comes from helm-values/traefik via Argo CD"
    say "  - servicelb      # MetalLB provides LoadBalancer addresses"
    say "  - local-storage  # Longhorn is the only (default) storage class"
    say "tls-san:"
    say "  - ${NODE_IP}"
    [[ ${HA} -eq 1 && ${JOINS} -eq 0 ]] && say "cluster-init: true"
  fi
  [[ ${JOINS} -eq 1 ]] && say "server: https://${FIRST_IP}:6443"
  [[ -n "${TOKEN}" ]] && say "token-file: ${TOKEN_PATH}"
  return 0
}
config | write_file /etc/rancher/k3s/config.yaml 0600
if [[ -n "${TOKEN}" ]]; then
  if is_dry_run; then
    say "[dry-run] would write $(rooted "${TOKEN_PATH}") (mode 0600): <token, ${#TOKEN} characters, not shown>"
  else
    printf '%s\n' "${TOKEN}" | write_file "${TOKEN_PATH}" 0600 >/dev/null
    say "wrote $(rooted "${TOKEN_PATH}") (mode 0600)"
  fi
fi

step "3. K3s ${K3S_VERSION} (${ROLE})"
explain "The official installer, pinned with INSTALL_K3S_VERSION; it reads the config file above."
INSTALLER="$(rooted /var/tmp/k3s-install.sh)"
run curl -sfL --retry 3 -o "${INSTALLER}" "${K3S_INSTALL_URL}"
run env "INSTALL_K3S_VERSION=${K3S_VERSION}" "INSTALL_K3S_EXEC=${ROLE}" sh "${INSTALLER}"

step "Done"
if [[ "${ROLE}" == "server" && ${JOINS} -eq 0 ]]; then
  say "Check: k3s kubectl get nodes -o wide   (kubeconfig: /etc/rancher/k3s/k3s.yaml)"
  [[ ${#NAMES[@]} -gt 1 ]] && say "Next: run this script on ${NAMES[*]:1} with the same K3S_TOKEN_FILE"
  say "Then: cluster/bootstrap/install-argocd.sh --topology ${TOPOLOGY##*/}"
fi
exit 0
