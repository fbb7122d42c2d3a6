# Two commands do everything from a fresh clone:
#   make run    create .venv, install, migrate, bootstrap a demo project, serve on 127.0.0.1:8000
#   make test   create .venv, install the test tools, run the whole suite
#   make bench  ingest throughput and memory on SQLite (BENCH_ARGS="--workers 2" etc., see bench/ingest_bench.py)
SHELL := /bin/bash
# The newest Python >= 3.11 on the PATH, unless PYTHON is given.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export TRAPLINE_DATA_DIR ?= ./trapline-data

.PHONY: run test lint format bench clean
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The suite runs in this many processes: most of its time is live servers, SDK retries and
# browsers waiting, not CPU, so even two cores run four well (TEST_PROCESSES=0: one process).
TEST_PROCESSES ?= 4

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Trapline needs Python 3.11 or newer on the PATH (or PYTHON=/path/to/python)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/trapline demo
	exec $(BIN)/trapline serve

# The browser tests drive Debian's chromium (browser downloads do not work everywhere):
# installed from the system's packages when missing, else those tests are skipped.
test: $(VENV)/.installed-test
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || { \
		echo "installing chromium (apt-get) for the browser tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "could not install chromium: the browser tests will be skipped"; }
# The mobile symbolication tests build real artefacts with Debian's ProGuard, clang, lld and
# llvm (llvm-objcopy, llvm-symbolizer, dsymutil): installed when missing, else those tests are skipped.
	@{ command -v proguard && command -v clang && command -v ld.lld && command -v llvm-symbolizer; } >/dev/null \
		|| ! command -v apt-get >/dev/null || { \
		echo "installing proguard, clang, lld and llvm (apt-get) for the mobile symbol tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq proguard clang lld llvm >/dev/null 2>&1 \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq proguard clang lld llvm >/dev/null; } \
		|| echo "could not install proguard, clang, lld, llvm: the mobile symbol tests will be skipped"; }
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal --durations=25 $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

# wrk is the load generator: written in C, it leaves the server more of a small machine's CPU than
# a Python client would. It is installed from the system's packages when missing; without it the
# benchmark falls back to a (labelled) Python load generator.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || ! command -v apt-get >/dev/null || { \
		echo "installing wrk (apt-get)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| echo "could not install wrk: using the Python load generator"; }
	$(BIN)/python bench/ingest_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
