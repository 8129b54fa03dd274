# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# nameko's CLI and eventlet warn about their own deprecations on every start
export PYTHONWARNINGS := ignore::UserWarning,ignore::DeprecationWarning

.PHONY: broker run test test-unit test-integration test-e2e test-faults test-fuzz bench bench-merge lock venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# the suites and the benchmark need RabbitMQ with its management API (a vhost per test)
broker: $(STAMP)
	@$(BIN)/lanling check-broker --management

run: $(STAMP)
	$(BIN)/lanling run

test: broker
	$(BIN)/nameko test -q tests/unit tests/integration tests/e2e

test-unit: $(STAMP)
	$(BIN)/nameko test -q tests/unit

test-integration: broker
	$(BIN)/nameko test -q tests/integration

test-e2e: broker
	$(BIN)/nameko test -q tests/e2e

test-faults: broker
	$(BIN)/nameko test -q tests/faults

# schemathesis against the real gateway: FUZZ_EXAMPLES (1000) per operation, FUZZ_SEED to replay.
# ~69,000 requests over 72 operations cost ~16 CPU-minutes (fuzzer ~55%, services ~45%): ~9 min
# on an idle 2-core machine, ~38 min when other suites share it.
test-fuzz: broker
	$(BIN)/nameko test -q -s tests/fuzz

bench: broker
	$(BIN)/python -m tests.bench

# 并单 alone: ms per submission of the duplicate check at 10^3, 10^5 and 10^6 stored cases (PostgreSQL)
bench-merge: broker
	$(BIN)/python -m tests.bench.merge

lock:
	rm -rf /tmp/lanling-lock && $(PYTHON) -m venv /tmp/lanling-lock
	/tmp/lanling-lock/bin/pip install --quiet -r requirements.in
	(echo "# Generated: pip freeze of a clean venv built from requirements.in. Regenerate with 'make lock'."; \
	 echo "setuptools==80.9.0"; /tmp/lanling-lock/bin/pip freeze) > requirements.txt

clean:
	rm -rf $(VENV) var
