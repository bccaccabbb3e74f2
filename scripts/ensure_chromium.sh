#!/usr/bin/env bash
# `make setup`: Chromium for the UI's screenshot test (tests/ui/test_screenshot.py).
#
# Playwright's own browser download does not work everywhere (no access to its CDN, or a
# distribution it does not support), so the tests drive the system's Chromium. This script
# installs Debian's `chromium` package with apt-get when it is missing and we run as root
# (containers, CI images); otherwise it says how to install it and leaves the machine alone.
# Without Chromium the screenshot test skips off CI and fails with CI=true.
# CHROMIUM_PATH, when set, names a Chromium to use instead (checked, never installed).
set -euo pipefail

find_chromium() {
  local candidate
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [[ -n "${candidate}" && -x "${candidate}" ]]; then
      echo "${candidate}"
      return 0
    fi
  done
  command -v chromium || command -v chromium-browser || return 1
}

if found="$(find_chromium)"; then
  echo "chromium: ${found}"
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "chromium: not found; installing Debian's chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium
  found="$(find_chromium)" || { echo "chromium: apt-get finished but no chromium binary" >&2; exit 1; }
  echo "chromium: ${found}"
  exit 0
fi

cat <<'HOW'
chromium: not found. The UI's screenshot test needs it (off CI it skips without it).
  Debian:  sudo apt-get install --no-install-recommends chromium
  Ubuntu:  sudo apt-get install chromium-browser   (or any Chromium; then set CHROMIUM_PATH)
  other:   install Chromium and set CHROMIUM_PATH=/path/to/chromium
HOW
