# shellcheck shell=bash disable=SC2016,SC2034
# Shared setup for the bootstrap scripts' bats tests: every system command is a PATH
# stub that only logs its arguments, scripts run with DRY_RUN=1 and ROOT_DIR in a temp
# dir, so nothing on the machine running the tests can change.

REPO="$(cd "${BATS_TEST_DIRNAME}/../../.." && pwd)"
BOOT="${REPO}/cluster/bootstrap"

setup_stubs() {
  export STUB_LOG="${BATS_TEST_TMPDIR}/stub.log"
  : >"${STUB_LOG}"
  STUBS="${BATS_TEST_TMPDIR}/bin"
  mkdir -p "${STUBS}"
  local cmd
  # commands that would change the host: they must never be called in dry run
  for cmd in dnf systemctl setenforce modprobe curl firewall-cmd kubectl helm sh rpm reboot; do
    printf '#!/usr/bin/env bash\necho "%s $*" >>"${STUB_LOG}"\nexit 1\n' "${cmd}" >"${STUBS}/${cmd}"
  done
  # read-only probes with a realistic answer
  printf '#!/usr/bin/env bash\necho "getenforce" >>"${STUB_LOG}.probes"\necho Enforcing\n' >"${STUBS}/getenforce"
  cat >"${STUBS}/systemctl" <<'STUB'
#!/usr/bin/env bash
# probes answer "enabled" (firewalld, iscsid) or "not enabled" (nm-cloud-setup); anything else is a change
case "$1" in
  is-enabled | is-active)
    echo "systemctl $*" >>"${STUB_LOG}.probes"
    [[ "$2" != nm-cloud-setup* ]]
    exit
    ;;
esac
echo "systemctl $*" >>"${STUB_LOG}"
exit 1
STUB
  cat >"${STUBS}/ip" <<STUB
#!/usr/bin/env bash
echo "ip \$*" >>"\${STUB_LOG}.probes"
case "\$*" in
  *route*) cat "\${IP_ROUTE_JSON:-${REPO}/tests/cluster/fixtures/ip-route-10.43.100.94.json}" ;;
  *addr*) cat "\${IP_ADDR_JSON:-${REPO}/tests/cluster/fixtures/ip-addr-10.43.100.94.json}" ;;
esac
STUB
  printf '#!/usr/bin/env bash\necho 1000\n' >"${STUBS}/id"
  chmod +x "${STUBS}"/*
  export PATH="${STUBS}:${PATH}"
  export ROOT="${BATS_TEST_TMPDIR}/root"
  mkdir -p "${ROOT}/etc/selinux"
  printf 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.6"\n' >"${ROOT}/etc/os-release"
  printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' >"${ROOT}/etc/selinux/config"
  export ROOT_DIR="${ROOT}"
  export DRY_RUN=1
  unset K3S_TOKEN K3S_TOKEN_FILE
}

# The host must be untouched: no mutating command ran, no file appeared under ROOT.
assert_nothing_changed() {
  if [[ -s "${STUB_LOG}" ]]; then
    echo "mutating commands were called:" >&2
    cat "${STUB_LOG}" >&2
    return 1
  fi
  local files
  files="$(cd "${ROOT}" && find . -type f | sort | tr '\n' ' ')"
  [[ "${files}" == "./etc/os-release ./etc/selinux/config " ]] || {
    echo "files changed under ROOT: ${files}" >&2
    return 1
  }
  grep -q '^SELINUX=enforcing' "${ROOT}/etc/selinux/config"
}

token_file() {
  printf 'test-token-0123456789abcdef\n' >"${BATS_TEST_TMPDIR}/token"
  export K3S_TOKEN_FILE="${BATS_TEST_TMPDIR}/token"
}
