# The two commands a new user needs: `make run` and `make test`. Both create .venv on first use.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

export DAGSTER_HOME ?= $(CURDIR)/.dagster
export SHEEN_HOME ?= $(CURDIR)/.sheen
export PROMPT ?= a landing page for Blue Fern Coffee in Portland, with a signup form and a menu

.PHONY: install sandbox browser run test lint dev bench loadtest clean

## install: the venv, with uv resolving and installing (downloads in parallel: a fresh install in
## about a third of pip's time) and every module compiled to bytecode once, as pip does
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## sandbox: bubblewrap, which confines generated build commands (installed when missing, as root)
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } || \
		{ echo "bubblewrap is missing: apt-get install bubblewrap (npm builds run in it;"\
		"SHEEN_SANDBOX=off is for trusted local use only)"; exit 1; }

## browser: Chromium's headless shell (Debian's, as root, when missing) and axe-core, for the
## preview checks
browser:
	@command -v chromium-headless-shell >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null; } || \
		{ echo "chromium-headless-shell is missing: apt-get install chromium-headless-shell"\
		"(the preview checks need it)"; exit 1; }
	@[ -f .tools/node_modules/axe-core/axe.min.js ] || \
		npm install --prefix .tools --no-audit --no-fund --silent axe-core@4

## run: build the sample PROMPT (or PROMPT="..."), print the preview URL, then serve it until Ctrl-C
run: install
	@$(MAKE) --no-print-directory sandbox || echo "(static sites build; npm sites wait for it)"
	@$(MAKE) --no-print-directory browser || echo "(previews are not checked in a browser until then)"
	$(BIN)/sheen build "$$PROMPT"
	$(BIN)/sheen serve

## test: lint, type check and the whole test suite, TEST_WORKERS (4) test processes at a time
## (tests mostly wait on builds, servers and subprocesses, so more processes than cores pay); each
## process is handed two tests at a time, the longest first (tests/conftest.py), so that the long
## ones spread over the processes instead of all landing in the first one's first batch.
## The tests start hundreds of Python processes: each reads the project's bytecode, written by the
## first, rather than compiling its modules anew (an empty PYTHONDONTWRITEBYTECODE is unset).
TEST_WORKERS ?= 4
test: lint sandbox browser
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 2 \
		--durations 15

lint: install
	$(BIN)/ruff check sheen_pipeline tests
	$(BIN)/ruff format --check sheen_pipeline tests
	$(BIN)/mypy --num-workers auto sheen_pipeline

## dev: the Dagster UI (webserver + daemon, sensors on) on this instance, plus `sheen serve` and
## `sheen watch` (new build jobs shown in the UI, a warning when the daemon stops heartbeating)
dev: install
	$(BIN)/sheen init
	trap 'kill 0' EXIT INT TERM; \
	export SHEEN_DAGSTER_WEBSERVER_URL=http://127.0.0.1:3000; \
	$(BIN)/sheen serve & \
	$(BIN)/sheen watch & \
	$(BIN)/dagster dev -w workspace.yaml -p 3000

## bench: benchmarks on this machine (each prints a table and one JSON line); slow, not part of test
bench: install sandbox browser
	$(BIN)/python -m tests.bench.parallel
	$(BIN)/python -m tests.bench.prompt_cache
	$(BIN)/python -m tests.bench.changes
	$(BIN)/python -m tests.bench.code_location
	$(BIN)/python -m tests.bench.burst --rows 1000
	$(BIN)/python -m tests.bench.vite
	$(BIN)/python -m tests.bench.webhooks
	$(BIN)/python -m tests.bench.daemon_cpu --builds 20 --profile

## loadtest: BUILDS (50) builds at once against a model server taking LATENCY (5) s per call, on
## the embedded default and on the Celery setup, then one build alone on each, and a Celery
## worker's first steps (needs the machine's Postgres and RabbitMQ)
BUILDS ?= 50
LATENCY ?= 5
loadtest: install
	$(BIN)/python -m tests.bench.loadtest --builds $(BUILDS) --latency $(LATENCY)
	$(BIN)/python -m tests.bench.loadtest --builds 1 --latency $(LATENCY)
	$(BIN)/python -m tests.bench.cold_worker

clean:
	rm -rf $(VENV) .tools .sheen .dagster
