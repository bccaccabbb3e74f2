#!/usr/bin/env bats
# prepare-host.sh in dry-run mode with stubbed system commands.

load helpers

setup() { setup_stubs; }

@test "prepare-host: dry run plans every step and changes nothing" {
  run "${BOOT}/prepare-host.sh"
  [ "$status" -eq 0 ]
  [[ "$output" == *"DRY RUN"* ]]
  [[ "$output" == *"would run: dnf -y makecache --refresh"* ]]
  [[ "$output" == *"would run: dnf -y upgrade"* ]]
  [[ "$output" == *"would run: dnf -y install iscsi-initiator-utils nfs-utils"* ]]
  [[ "$output" == *"would run: modprobe iscsi_tcp"* ]]
  [[ "$output" == *"would run: modprobe dm_crypt"* ]]
  [[ "$output" == *"would write ${ROOT}/etc/modules-load.d/longhorn.conf"* ]]
  [[ "$output" == *"would run: setenforce 0"* ]]
  [[ "$output" == *"| SELINUX=permissive"* ]]
  [[ "$output" == *"would run: systemctl disable --now firewalld"* ]]
  [[ "$output" == *"unchanged: iscsid is enabled and running"* ]]
  assert_nothing_changed
}

@test "prepare-host: --firewall open opens the K3s ports instead of disabling firewalld" {
  run "${BOOT}/prepare-host.sh" --firewall open --no-upgrade
  [ "$status" -eq 0 ]
  for port in 6443/tcp 10250/tcp 8472/udp 2379-2380/tcp; do
    [[ "$output" == *"firewall-cmd --permanent --add-port=${port}"* ]]
  done
  [[ "$output" == *"--zone=trusted --add-source=10.44.0.0/16"* ]]
  [[ "$output" == *"--zone=trusted --add-source=10.45.0.0/16"* ]]
  [[ "$output" != *"disable --now firewalld"* ]]
  [[ "$output" == *"skipped: dnf upgrade"* ]]
  assert_nothing_changed
}

@test "prepare-host: --dry-run flag works without DRY_RUN in the environment" {
  unset DRY_RUN
  run "${BOOT}/prepare-host.sh" --dry-run
  [ "$status" -eq 0 ]
  assert_nothing_changed
}

@test "prepare-host: idempotent - an already prepared host needs no SELinux change" {
  printf 'SELINUX=permissive\nSELINUXTYPE=targeted\n' >"${ROOT}/etc/selinux/config"
  printf '#!/usr/bin/env bash\necho Permissive\n' >"${STUBS}/getenforce"
  run "${BOOT}/prepare-host.sh"
  [ "$status" -eq 0 ]
  [[ "$output" == *"unchanged: SELinux is Permissive"* ]]
  [[ "$output" == *"unchanged: ${ROOT}/etc/selinux/config"* ]]
  [[ "$output" != *"would run: setenforce"* ]]
  [[ -z "$(cat "${STUB_LOG}")" ]]
}

@test "prepare-host: refuses a host that is not Rocky/RHEL 9" {
  printf 'ID=ubuntu\nVERSION_ID="24.04"\n' >"${ROOT}/etc/os-release"
  run "${BOOT}/prepare-host.sh"
  [ "$status" -ne 0 ]
  [[ "$output" == *"supports Rocky Linux / RHEL 9"* ]]
  printf 'ID="rocky"\nVERSION_ID="8.10"\n' >"${ROOT}/etc/os-release"
  run "${BOOT}/prepare-host.sh"
  [ "$status" -ne 0 ]
  [[ "$output" == *"supports version 9"* ]]
}

@test "prepare-host: a real run refuses non-root before touching anything" {
  unset DRY_RUN
  run "${BOOT}/prepare-host.sh"
  [ "$status" -ne 0 ]
  [[ "$output" == *"run as root"* ]]
  [[ -z "$(cat "${STUB_LOG}")" ]]
}
