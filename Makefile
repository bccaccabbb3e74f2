# One vocabulary of tasks: humans, hooks and CI call these targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_VERSION := 3.11
UV_VERSION := 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
AIRFLOW_VENV := .venv-airflow
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
AIRFLOW_PY := $(AIRFLOW_VENV)/bin/python

.PHONY: help setup vendor preflight lock demo demo-fetch serve test test-dags test-e2e test-fast lint format validate cluster-run airflow bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# --- environments -----------------------------------------------------------------------------
# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on our machines), nothing else would
# ever write .pyc files, and every task process would compile MLflow & co. from source again.
.tools/bin/uv:
	python3 -m pip install --quiet --target .tools/uv "uv==$(UV_VERSION)"
	mkdir -p .tools/bin && ln -sf ../uv/bin/uv .tools/bin/uv

$(VENV)/.synced: requirements/dev.txt pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --compile-bytecode requirements/dev.txt
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps -e .
	touch $@

$(AIRFLOW_VENV)/.synced: requirements/airflow-dev.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(AIRFLOW_VENV)
	VIRTUAL_ENV=$(AIRFLOW_VENV) $(UV) pip sync --quiet --compile-bytecode requirements/airflow-dev.txt
	touch $@

$(CHECKOV_VENV)/.synced: requirements/checkov.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(CHECKOV_VENV)
	VIRTUAL_ENV=$(CHECKOV_VENV) $(UV) pip sync --quiet --compile-bytecode requirements/checkov.txt
	touch $@

node_modules/.synced: package-lock.json
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the bats tests will use a system bats if there is one"; fi
	mkdir -p node_modules && touch $@

# Chromium for the UI's screenshot test: Debian's package where missing (as root), else a hint.
.tools/.chromium: scripts/ensure_chromium.sh
	scripts/ensure_chromium.sh
	mkdir -p .tools && touch $@

# Prometheus' promtool for the alert rules' test: Debian's prometheus where missing (as root), else a hint.
.tools/.promtool: scripts/ensure_promtool.sh
	scripts/ensure_promtool.sh
	mkdir -p .tools && touch $@

setup: $(VENV)/.synced $(AIRFLOW_VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced .tools/.chromium .tools/.promtool ## create the environments from the locks

vendor: $(VENV)/.synced ## download the pinned Helm charts and schemas into .cache/vendor (needs network)
	$(PY) cluster/tools/vendor.py download

lock: | $(UV) ## re-resolve every lock file from its .in file (needs PyPI)
	for env in dev airflow airflow-dev checkov; do \
	  $(UV) pip compile --quiet --python-version $(PYTHON_VERSION) requirements/$$env.in -o requirements/$$env.txt; \
	done
	for in in images/*/requirements*.in; do \
	  (cd $$(dirname $$in) && $(UV) pip compile --quiet --python-version $(PYTHON_VERSION) \
	    $$(basename $$in) -o $$(basename $$in .in).txt); \
	done

# --- the two commands ---------------------------------------------------------------------------
demo: setup ## the real DAG through Airflow, once per batch until the API is exhausted, then a summary table
	$(PY) scripts/demo_pipeline.py $(DEMO_ARGS)

serve: setup ## serving (:8000) and the UI (:8501) on the demo's stores until Ctrl-C (after make demo)
	$(PY) scripts/local_apps.py $(SERVE_ARGS)

demo-fetch: setup ## the ingestion alone: start the simulator, fetch every batch, print the raw zone
	$(PY) scripts/demo_fetch.py

# The main suite runs on TEST_WORKERS pytest-xdist workers, each running whole work units (a module,
# or the modules that share one expensive session fixture), the longest first: see
# tests/support/xdist_units.py. The DAG tests (Airflow's env) and the cluster checks share nothing
# with it: they run meanwhile in the background, and their output follows the suite's.
TEST_WORKERS ?= 2
TEST_LOGS := .cache/test-logs

# In the first seconds of `make test`: the charts and schemas (fetched when none are found), then
# every program and service the tests use, found or missing (tests/support/programs.py). On CI
# anything missing stops the run here; elsewhere the tests that need it skip.
preflight: $(VENV)/.synced ## say what the tests use and what is missing (fetches the charts and schemas if none)
	@rc=0; $(PY) cluster/tools/vendor.py ensure || rc=$$?; $(PY) -m tests.support.programs || rc=$$?; exit $$rc

test: setup preflight lint ## every test: unit, integration (Postgres, SeaweedFS, MLflow, simulator), DAG, cluster
	@rm -rf $(TEST_LOGS) && mkdir -p $(TEST_LOGS)
	@( rc=0; if [ -d tests/dags ]; then $(AIRFLOW_PY) -m pytest tests/dags >$(TEST_LOGS)/dags.log 2>&1 || rc=$$?; fi; \
	   echo $$rc >$(TEST_LOGS)/dags.rc; \
	   rc=0; if [ -x cluster/validate.sh ]; then cluster/validate.sh >$(TEST_LOGS)/cluster.log 2>&1 || rc=$$?; fi; \
	   echo $$rc >$(TEST_LOGS)/cluster.rc ) & \
	rc=0; $(PY) -m pytest tests --ignore=tests/dags --ignore=tests/cluster \
	  -n $(TEST_WORKERS) --dist loadscope --durations=20 || rc=$$?; \
	wait; \
	for part in dags cluster; do \
	  printf '\n===== %s (in the background meanwhile)\n' "$$part"; cat $(TEST_LOGS)/$$part.log 2>/dev/null || true; \
	  [ "$$(cat $(TEST_LOGS)/$$part.rc)" = 0 ] || { echo "$$part: FAILED"; rc=1; }; \
	done; \
	exit $$rc

test-dags: setup ## DAG parse, structure and pod tests (the Airflow env)
	$(AIRFLOW_PY) -m pytest tests/dags

test-e2e: setup ## the DAG end to end through Airflow against real services
	$(PY) -m pytest tests/e2e

test-fast: setup ## the unit tests only
	$(PY) -m pytest tests -m "not slow" --ignore=tests/dags --ignore=tests/cluster --ignore=tests/e2e

lint: setup ## ruff lint and format check; the layers' import contracts (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=.:dags $(VENV)/bin/lint-imports --no-cache

format: setup ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Every workload of our images started here from its rendered spec (and compose's), against TLS
# PostgreSQL and SeaweedFS, each waited for by its own probe and smoke-called: docs/cluster.md.
cluster-run: setup ## start our workloads from their rendered specs and compose, probe and smoke-call each
	$(PY) cluster/tools/workloads $(CLUSTER_RUN_ARGS)

airflow: setup ## Airflow UI + scheduler on http://127.0.0.1:8080 with this repo's DAGs (local runtime)
	scripts/airflow_local.sh

validate: setup ## render and schema-check every manifest, values file and script
	cluster/validate.sh

bench: setup ## the benchmarks (on demand; results go to bench/README.md)
	$(PY) bench/fetch_full_scale.py
	$(PY) bench/pipeline_full_scale.py
	$(PY) bench/serving.py
	$(PY) bench/monitor_window.py

clean: ## remove local state (var/), keeping the environments
	rm -rf var mlruns mlartifacts
