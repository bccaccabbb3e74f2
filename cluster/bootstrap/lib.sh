# shellcheck shell=bash
# Helpers shared by the bootstrap and secrets scripts. Source it; do not run it.
#
# Safety model (the scripts run as root on real hosts, and in tests on a dev box):
#   * every command that changes the host goes through `run`, every file through
#     `write_file`; with DRY_RUN=1 both only print what they would do;
#   * files are written under ROOT_DIR (default /), so tests point it at a temp dir;
#   * read-only probes (getenforce, systemctl is-enabled, ip -json ...) do run in dry
#     run, so the plan reflects the host's state; tests replace them with PATH stubs.

DRY_RUN="${DRY_RUN:-0}"
ROOT_DIR="${ROOT_DIR:-/}"

is_dry_run() { [[ "${DRY_RUN}" == "1" || "${DRY_RUN}" == "true" ]]; }

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
explain() { printf '   %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# Shell-quoted rendering of a command, for the dry-run plan.
render_cmd() {
  local out=() arg
  for arg in "$@"; do out+=("$(printf '%q' "${arg}")"); done
  printf '%s' "${out[*]}"
}

# run CMD ARGS...: execute, or print in dry-run mode.
run() {
  if is_dry_run; then
    say "[dry-run] would run: $(render_cmd "$@")"
  else
    say "+ $(render_cmd "$@")"
    "$@"
  fi
}

# rooted /etc/x -> ${ROOT_DIR}/etc/x (ROOT_DIR=/ leaves the path as is).
rooted() {
  local root="${ROOT_DIR%/}"
  printf '%s%s' "${root}" "$1"
}

# write_file PATH MODE < content: write atomically under ROOT_DIR, only if it changes.
write_file() {
  local target mode content
  target="$(rooted "$1")"
  mode="$2"
  content="$(cat)"
  if [[ -f "${target}" ]] && [[ "$(cat "${target}")" == "${content}" ]]; then
    say "unchanged: ${target}"
    return 0
  fi
  if is_dry_run; then
    say "[dry-run] would write ${target} (mode ${mode}):"
    printf '%s\n' "${content}" | sed 's/^/    | /'
    return 0
  fi
  install -d -m 0755 "$(dirname "${target}")"
  (umask 077 && printf '%s\n' "${content}" >"${target}.tmp")
  chmod "${mode}" "${target}.tmp"
  mv -f "${target}.tmp" "${target}"
  say "wrote ${target} (mode ${mode})"
}

# require_rhel9: Rocky Linux or RHEL (or AlmaLinux), major version 9.
require_rhel9() {
  local release id version
  release="$(rooted /etc/os-release)"
  [[ -r "${release}" ]] || die "cannot read ${release}: not a Rocky/RHEL 9 host"
  id="$(sed -n 's/^ID=//p' "${release}" | tr -d "\"'" | head -n1)"
  version="$(sed -n 's/^VERSION_ID=//p' "${release}" | tr -d "\"'" | head -n1)"
  case "${id}" in
    rocky | rhel | almalinux) ;;
    *) die "this script supports Rocky Linux / RHEL 9; ${release} says ID=${id}" ;;
  esac
  [[ "${version%%.*}" == "9" ]] || die "this script supports version 9; ${release} says VERSION_ID=${version}"
  say "host: ${id} ${version}"
}

# require_root: real runs need root; a dry run only warns.
require_root() {
  if [[ "$(id -u)" != "0" ]]; then
    if is_dry_run; then
      warn "not root: fine for a dry run, a real run needs root"
    else
      die "run as root (sudo $0 ...)"
    fi
  fi
}
