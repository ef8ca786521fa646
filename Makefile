# Every target bootstraps .venv itself: a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Chart.js and Swagger UI (the /api/docs page) come from the npm registry (package.json +
# lock) and are committed into the package's static files, so every install (a wheel, an
# sdist, a git URL) serves them without npm and nothing loads from a CDN.
# tests/web/test_vendor.py checks the committed files are the lockfile's, byte for byte;
# `make vendor` refreshes them after a change to package.json.
VENDOR := src/vigil/web/static/vendor/chart.umd.min.js
SWAGGER_UI := src/vigil/web/static/vendor/swagger-ui
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE
NPM_STAMP := node_modules/.package-lock.json

.PHONY: install demo test lint bench peers trace vendor clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Before 0.2 the distribution was named vigil: one editable install of the code, not two.
	$(BIN)/python -m pip uninstall --quiet --yes vigil 2>/dev/null || true
	rm -rf src/vigil.egg-info
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts

install: $(STAMP) $(NPM_STAMP)

vendor: $(NPM_STAMP)
	mkdir -p $(dir $(VENDOR)) $(SWAGGER_UI)
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)
	for file in $(SWAGGER_UI_FILES); do cp node_modules/swagger-ui-dist/$$file $(SWAGGER_UI)/; done

# A fresh SQLite database (migrated), an admin and a viewer, and the whole of Vigil on
# http://127.0.0.1:8000 fed by a simulated bot. Ctrl-C stops it.
demo: $(STAMP)
	$(BIN)/vigil demo

# Tests run in parallel, two workers per core (at least four: many tests wait on a child
# process or a browser, and a second worker per core uses that time; measured 9-10 % faster
# than one per core on 2 cores): each worker has its own databases (tests/conftest.py), and
# the slow tests start first. TEST_WORKERS=0 runs them in this one process.
# Bytecode is cached even where the environment says PYTHONDONTWRITEBYTECODE: without it every
# worker rewrites the asserts of every test module and every child process (`vigil serve`, the
# crash tests) compiles Vigil again, about a tenth of the suite's CPU.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -lt 2 ] && n=2; echo $$((2 * n)))

test: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check src tests benchmarks scripts examples
	$(BIN)/mypy
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest --cov --cov-report=term -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts examples
	$(BIN)/ruff format --check src tests benchmarks scripts examples
	$(BIN)/mypy

# Runs every benchmark (each prints its ratio against its baseline) and writes BENCHMARKS.md;
# `make bench BENCH="bench_peer bench_api"` reruns those and replaces only their sections.
# VIGIL_BENCH_QUICK=1 shortens benchmarks/bench_peer.py (the side-by-side with Prometheus).
bench: $(STAMP) peers
	$(BIN)/python scripts/run_benchmarks.py BENCHMARKS.md $(BENCH)

# Prometheus, Alertmanager and wrk (its load generator) for benchmarks/bench_peer.py, from
# Debian's packages when they are missing (as root, or with sudo if it needs no password).
# Never fails: without them that benchmark says why and skips.
PEER_PACKAGES := prometheus prometheus-alertmanager wrk
peers:
	@if command -v prometheus >/dev/null 2>&1 && \
	    { command -v prometheus-alertmanager || command -v alertmanager; } >/dev/null 2>&1 && \
	    command -v wrk >/dev/null 2>&1; then \
	  exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "peers: no apt-get here; install Prometheus, Alertmanager and wrk to run bench_peer.py"; \
	  exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "peers: not root and no password-less sudo: bench_peer.py will skip"; exit 0; fi; \
	echo "peers: installing $(PEER_PACKAGES) with apt-get"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y --no-install-recommends $(PEER_PACKAGES) || \
	  { $$sudo apt-get update && \
	    $$sudo apt-get install -y --no-install-recommends $(PEER_PACKAGES); } || \
	  echo "peers: apt-get could not install $(PEER_PACKAGES): bench_peer.py will skip"

# Regenerates the sample trace shipped with the package (deterministic: fixed seed).
trace: $(STAMP)
	$(BIN)/python scripts/make_sample_trace.py src/vigil/data/sample_trace.csv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build dist src/*.egg-info
