#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Prepare a Rocky Linux / RHEL 9 host for K3s and Longhorn. Idempotent: run it again
# after an upgrade or on a half-prepared host and it only does what is missing.
#
# Usage: sudo cluster/bootstrap/prepare-host.sh [--dry-run] [--firewall disable|open] [--no-upgrade]
# Environment: DRY_RUN=1 (same as --dry-run), FIREWALL_MODE=disable|open,
#              SKIP_UPGRADE=1, ROOT_DIR (write files under another root; tests).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
# shellcheck source=versions.env
. "${HERE}/versions.env"

FIREWALL_MODE="${FIREWALL_MODE:-disable}"
SKIP_UPGRADE="${SKIP_UPGRADE:-0}"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --firewall) FIREWALL_MODE="${2:?--firewall needs disable or open}"; shift ;;
    --no-upgrade) SKIP_UPGRADE=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
case "${FIREWALL_MODE}" in disable | open) ;; *) die "FIREWALL_MODE must be disable or open" ;; esac

# Ports K3s and the platform need between nodes when firewalld stays on.
FIREWALL_PORTS=(
  6443/tcp      # Kubernetes API (agents and other servers -> servers)
  10250/tcp     # kubelet (metrics-server, logs, exec)
  8472/udp      # flannel VXLAN between nodes
  2379-2380/tcp # embedded etcd between servers (three-node topology)
  7946/tcp      # MetalLB speaker memberlist
  7946/udp      # MetalLB speaker memberlist
  80/tcp        # Traefik HTTP (LoadBalancer address)
  443/tcp       # Traefik HTTPS
  9100/tcp      # node exporter scraped by Prometheus
)
LONGHORN_MODULES=(iscsi_tcp dm_crypt)
PACKAGES=(iscsi-initiator-utils nfs-utils cryptsetup device-mapper jq curl)

is_dry_run && say "DRY RUN: nothing on this host will change."
step "0. Checks"
explain "K3s and Longhorn are prepared for Rocky Linux / RHEL 9 only, and need root."
require_rhel9
require_root

step "1. Package refresh"
explain "Refresh the dnf metadata and apply updates, so the kernel and iSCSI tools match."
run dnf -y makecache --refresh
if [[ "${SKIP_UPGRADE}" == "1" ]]; then
  say "skipped: dnf upgrade (SKIP_UPGRADE=1)"
else
  run dnf -y upgrade
fi

step "2. Longhorn prerequisites"
explain "Longhorn attaches volumes over iSCSI (iscsi-initiator-utils + iscsid), serves"
explain "RWX volumes over NFSv4 (nfs-utils) and encrypts with dm_crypt (cryptsetup)."
run dnf -y install "${PACKAGES[@]}"
if systemctl is-enabled iscsid >/dev/null 2>&1 && systemctl is-active iscsid >/dev/null 2>&1; then
  say "unchanged: iscsid is enabled and running"
else
  run systemctl enable --now iscsid
fi

step "3. Kernel modules for Longhorn"
explain "Load them now and at every boot (/etc/modules-load.d/longhorn.conf)."
printf '%s\n' "${LONGHORN_MODULES[@]}" | write_file /etc/modules-load.d/longhorn.conf 0644
for module in "${LONGHORN_MODULES[@]}"; do
  run modprobe "${module}"
done

step "4. SELinux permissive"
explain "Permissive now (setenforce 0) and after reboots (/etc/selinux/config); denials"
explain "are still logged to /var/log/audit/audit.log (see docs/cluster.md)."
selinux_state="$(getenforce 2>/dev/null || printf 'unknown')"
if [[ "${selinux_state}" == "Enforcing" ]]; then
  run setenforce 0
else
  say "unchanged: SELinux is ${selinux_state}"
fi
selinux_config="$(rooted /etc/selinux/config)"
if [[ -f "${selinux_config}" ]]; then
  sed -E 's/^SELINUX=.*/SELINUX=permissive/' "${selinux_config}" | write_file /etc/selinux/config 0644
else
  printf 'SELINUX=permissive\nSELINUXTYPE=targeted\n' | write_file /etc/selinux/config 0644
fi

step "5. Firewall (${FIREWALL_MODE})"
if [[ "${FIREWALL_MODE}" == "disable" ]]; then
  explain "K3s' flannel and kube-proxy rules conflict with firewalld's: the K3s docs"
  explain "recommend turning it off. Use --firewall open to keep it and open the ports."
  if systemctl is-enabled firewalld >/dev/null 2>&1 || systemctl is-active firewalld >/dev/null 2>&1; then
    run systemctl disable --now firewalld
  else
    say "unchanged: firewalld is disabled"
  fi
else
  explain "Keep firewalld; open the node ports and trust the pod and service networks."
  for port in "${FIREWALL_PORTS[@]}"; do
    run firewall-cmd --permanent "--add-port=${port}"
  done
  run firewall-cmd --permanent --zone=trusted "--add-source=${CLUSTER_CIDR}"
  run firewall-cmd --permanent --zone=trusted "--add-source=${SERVICE_CIDR}"
  run firewall-cmd --reload
fi

step "6. NetworkManager cloud setup"
explain "nm-cloud-setup rewrites routing tables and breaks flannel (K3s docs, RHEL)."
if systemctl is-enabled nm-cloud-setup.service >/dev/null 2>&1; then
  run systemctl disable --now nm-cloud-setup.service nm-cloud-setup.timer
  warn "nm-cloud-setup was enabled: reboot before installing K3s"
else
  say "unchanged: nm-cloud-setup is not enabled"
fi

step "Done"
say "Next: cluster/bootstrap/install-k3s.sh --topology <file> --node <name>"
