#!/usr/bin/env bash
# `make airflow`: Airflow 3 on this machine, with this repository's DAGs, the local runtime.
#
# `airflow standalone` (api-server + scheduler + dag-processor + triggerer, LocalExecutor) with
# AIRFLOW_HOME=var/airflow (SQLite metadata) and the dags folder = <repo>/dags. The UI is on
# http://127.0.0.1:${AIRFLOW_PORT:-8080}; user `admin`, password generated on first start in
# var/airflow/simple_auth_manager_passwords.json.generated. The tasks run as subprocesses in
# .venv (PIPELINE_RUNTIME=local) against the embedded stores under var/ (as `make demo`).
# DATA_API_URL set (e.g. `make airflow DATA_API_URL=http://10.43.100.103:8080`, the course's API):
# the DAGs use that API and nothing is started or probed (the course's API has no /health).
# Unset: the data API simulator is started on http://127.0.0.1:8090 (scale DATA_API_SCALE,
# default 0.02) unless that port is already taken, and stopped when this script stops.
# Variables already set in the environment win over every default below.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AIRFLOW="$REPO/.venv-airflow/bin/airflow"
TASKS_PYTHON="$REPO/.venv/bin/python"
for bin in "$AIRFLOW" "$TASKS_PYTHON"; do
  [[ -x "$bin" ]] || { echo "missing $bin: create the virtualenvs first (make setup)" >&2; exit 2; }
done

# `airflow standalone` starts its components as `airflow ...` from PATH
export PATH="$REPO/.venv-airflow/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
# the workers reach the task execution API on the same server (default: localhost:8080)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT/execution/}"
export PIPELINE_RUNTIME="${PIPELINE_RUNTIME:-local}"
# the scheduler runs every task in a process of its own: a launcher would serve one run, so a
# fresh interpreter per task is the cheaper start (docs/pipeline.md, "local")
export PIPELINE_LOCAL_PRELOAD="${PIPELINE_LOCAL_PRELOAD:-0}"
export PIPELINE_TASKS_PYTHON="${PIPELINE_TASKS_PYTHON:-$TASKS_PYTHON}"
export LEDGER_URL="${LEDGER_URL:-sqlite:///$REPO/var/ledger.db}"
export STORAGE_URL="${STORAGE_URL:-file://$REPO/var/lake}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$REPO/var/mlflow.db}"
external_api="${DATA_API_URL:-}"
export DATA_API_URL="${DATA_API_URL:-http://127.0.0.1:8090}"
DATA_API_SCALE="${DATA_API_SCALE:-0.02}"
# the volume rule scaled like the simulator's data (10,000 rows at full scale), short training
export MIN_TRAIN_ROWS="${MIN_TRAIN_ROWS:-$(awk -v s="$DATA_API_SCALE" 'BEGIN { printf "%d", 10000 * s }')}"
export TRAIN_TIME_BUDGET_SECONDS="${TRAIN_TIME_BUDGET_SECONDS:-30}"
mkdir -p "$AIRFLOW_HOME"

api_pid=""
stop_api() {
  if [[ -n "$api_pid" ]] && kill -0 "$api_pid" 2>/dev/null; then
    echo "stopping the data API simulator (pid $api_pid)"
    kill -TERM "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
  fi
}
trap stop_api EXIT INT TERM

port_open() {  # a TCP connect to the URL's host and port: no request the API would count
  "$TASKS_PYTHON" -c 'import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), 2).close()' "$1" 2>/dev/null
}

if [[ -n "$external_api" ]]; then
  echo "data API: $DATA_API_URL (external: nothing started; GROUP_NUMBER=${GROUP_NUMBER:-1}, DAY=${DAY:-Tuesday})"
  port_open "$DATA_API_URL" || echo "warning: nothing accepts connections at $DATA_API_URL yet; fetch will fail until it does" >&2
elif ! port_open "$DATA_API_URL"; then
  port="${DATA_API_URL##*:}"; port="${port%%/*}"
  echo "starting the data API simulator on port $port (scale $DATA_API_SCALE; log $AIRFLOW_HOME/data_api.log)"
  (cd "$REPO" && exec "$TASKS_PYTHON" -m data_api --port "$port" --scale "$DATA_API_SCALE") \
    >"$AIRFLOW_HOME/data_api.log" 2>&1 &
  api_pid=$!
fi

echo "Airflow UI: http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT (AIRFLOW_HOME=$AIRFLOW_HOME; Ctrl-C stops everything)"
cd "$REPO"
"$AIRFLOW" standalone &
airflow_pid=$!
trap 'kill -TERM "$airflow_pid" 2>/dev/null || true; wait "$airflow_pid" 2>/dev/null || true; stop_api' EXIT INT TERM
wait "$airflow_pid"
