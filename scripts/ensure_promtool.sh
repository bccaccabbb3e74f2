#!/usr/bin/env bash
# `make setup`: Prometheus' promtool for the alert rules' test (tests/cluster/test_alert_rules.py,
# `promtool test rules`: the live-drift alerts evaluated by Prometheus' own rule engine).
#
# No PyPI package ships promtool; Debian's `prometheus` package does. This script installs it
# with apt-get when promtool is missing and we run as root (containers, CI images); otherwise it
# says how to install it and leaves the machine alone. Without promtool the test skips off CI and
# fails with CI=true. Debian's package also ships a prometheus service: nothing here starts it.
set -euo pipefail

if found="$(command -v promtool)"; then
  echo "promtool: ${found}"
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "promtool: not found; installing Debian's prometheus (it ships promtool) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus
  found="$(command -v promtool)" || { echo "promtool: apt-get finished but no promtool" >&2; exit 1; }
  echo "promtool: ${found}"
  exit 0
fi

cat <<'HOW'
promtool: not found. The alert rules' test needs it (off CI it skips without it).
  Debian/Ubuntu:  sudo apt-get install --no-install-recommends prometheus
  other:          put promtool from a Prometheus release on the PATH
HOW
