# databricks-ai-agent — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov

.PHONY: help setup demo test test-unit test-integration test-e2e eval bench fault-soak check-infra run doctor clean
.PHONY: bench-pipeline storm

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

setup: $(VENV)/.installed node_modules/.installed  ## install the pinned Python and Node dependencies

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup  ## run the agent against a simulated Databricks workspace on Azurite
	$(PY) -m localdev.demo

test: setup  ## all tests: unit, integration (Azurite, SMTP, fakes), end-to-end
	$(PY) -m pytest tests

test-unit: setup  ## tests/unit only (no I/O)
	$(PY) -m pytest tests/unit

test-integration: setup  ## tests/integration only
	$(PY) -m pytest tests/integration

test-e2e: setup  ## tests/e2e only (the Functions through the local runner)
	$(PY) -m pytest tests/e2e

DEV_SET ?= ../shared/eval/dev.jsonl

eval: setup  ## classifier accuracy: the dev sets gate (0.99 / 0.99 / 0 harmful, no new miss); the holdout is reported
	$(PY) -m shared eval --if-present --data $(DEV_SET) --fail-under-category 0.99 --fail-under-action 0.99 --max-harmful 0 --fail-under-gated 0.99
	$(PY) -m shared eval --data tests/data/dev-2.jsonl --fail-under-category 0.99 --fail-under-action 0.99 --max-harmful 0 --fail-under-gated 0.99
	$(PY) -m shared eval --if-present --report-only --data tests/data/holdout-2.jsonl

BENCH_ARGS ?=
bench: setup  ## classifier speed: classifications/s on the labeled sets, worst pathological input per 100 KB
	$(PY) -m shared bench $(BENCH_ARGS)

bench-pipeline: setup  ## throughput of the whole agent: a burst of 1,000 webhooks (ARGS="--failures N --llm --json")
	$(PY) -m localdev.bench_pipeline $(ARGS)

STORM_ARGS ?=
storm: setup  ## 200 jobs failing within 60 s from one 2-minute cloud outage: notifications, reruns, peak rate (STORM_ARGS="--jobs N --json")
	$(PY) -m localdev.storm $(STORM_ARGS)

fault-soak: setup  ## exactly once under ~20% Jobs API faults: 1,000 failures, prints the figures
	$(PY) -m localdev.fault_soak --failures 1000

run: setup  ## the Functions on loopback (stand-in for `func start`), reading local.settings.json
	$(PY) -m localdev.host

doctor: $(VENV)/.installed  ## check configuration (local.settings.json, environment) and connections
	$(PY) -m shared doctor

CHECKOV_VERSION := 3.3.30

# checkov lives in its own venv: its pins clash with the app's.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

check-infra: setup $(CHECKOV_VENV)/.installed  ## checkov on infra/ (parse errors, failed or unexplained skips fail) + infra tests
	$(PY) scripts/check_infra.py --checkov $(CHECKOV_VENV)/bin/checkov
	CHECKOV_VENV=$(CHECKOV_VENV) INFRA_TESTS_REQUIRE_CHECKOV=1 $(PY) -m pytest tests/infra

clean:  ## remove installed dependencies and caches
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .hypothesis .demo
