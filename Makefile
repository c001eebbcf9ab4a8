# The whole product is driven from here. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help run test check lint format bench bench-streams bench-live screenshots fuzz load lock assets install clean

help: ## List the targets
	@awk -v host=$(HOST) -v port=$(PORT) 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / { \
		gsub(/\$$\(HOST\)/, host, $$2); gsub(/\$$\(PORT\)/, port, $$2); \
		printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  (HOST=... PORT=... change where make run listens; PYTEST_ARGS=... pass options to pytest)"

$(VENV)/.installed: requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@echo "Installing the Python dependencies into $(VENV) (about a minute, once)..."
	$(PYTHON) -m venv $(VENV)
	@# On a terminal pip shows its own progress (what it fetches, its progress bars); elsewhere
	@# (CI, logs) it prints only problems, so the output stays short.
	@set -e; if [ -t 1 ]; then output=--progress-bar=on; else output=--quiet; fi; \
		$(VENV)/bin/pip install $$output --upgrade pip; \
		$(VENV)/bin/pip install $$output --require-hashes -r requirements/dev.txt
	@touch $@

install: $(VENV)/.installed ## Create .venv with the locked dependencies

node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: the map and charts need Node.js/npm once at set-up time; everything else works."; \
	fi

assets: node_modules/.installed ## Install the front-end libraries (npm, locked)

run: install assets ## Start web (http://$(HOST):$(PORT)), worker and scheduler on embedded defaults
	$(PY) manage.py bootstrap
	@# The processes write to honcho's pipe, not the terminal: readable lines when make runs on a
	@# terminal (the log files stay JSON lines), JSON otherwise, unless LOG_FORMAT says.
	@if [ -t 1 ]; then format=text; else format=json; fi; \
		LOG_FORMAT=$${LOG_FORMAT:-$$format} LOG_FILES=$${LOG_FILES:-true} HOST=$(HOST) PORT=$(PORT) \
		$(PY) -m project.runner start --procfile Procfile

test: install assets ## Run the test suite (SQLite, or DATABASE_URL=postgres://...)
	$(PY) -m pytest $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 1000
fuzz: install ## Fuzz the API at length (FUZZ_EXAMPLES cases per operation); writes bench/fuzz-results.md
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 FUZZ_RESULTS=bench/fuzz-results.md \
		SQLITE_TEST_NAME=$(CURDIR)/var/fuzz-test-db.sqlite3 \
		$(PY) -m pytest tests/fuzz/test_api_fuzz.py -q $(PYTEST_ARGS)

LOAD_WRITERS ?= 8
LOAD_READERS ?= 8
LOAD_SECONDS ?= 30
load: install ## Load test against gunicorn on PostgreSQL (DATABASE_URL=postgres://...); fails on any loss
	@case "$$DATABASE_URL" in postgres*) ;; *) echo "make load needs DATABASE_URL=postgres://... (load-test events are written there)"; exit 1;; esac
	$(PY) bench/ensure_database.py
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py loadtest --writers $(LOAD_WRITERS) --readers $(LOAD_READERS) --seconds $(LOAD_SECONDS)

check: install ## Lint, format check, type check, import contracts and missing migrations
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

format: install ## Apply the formatter and the lint fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

BENCH_EVENTS ?= 1000000

bench: install ## Measure the performance table on a fresh PostgreSQL (BENCH_DATABASE_URL, BENCH_EVENTS); writes bench/results.md
	$(PY) bench/run.py --events $(BENCH_EVENTS) $(BENCH_ARGS)

bench-streams: install ## Stream delivery rate per worker beside the raw send rate (HTTP, syslog/TLS); writes bench/streams-results.md
	$(PY) bench/streams.py $(BENCH_ARGS)

bench-live: install ## 200 live streams on one web process: list p50 and commit-to-client latency; writes bench/live-results.md
	$(PY) bench/live.py $(BENCH_ARGS)

screenshots: install assets ## Screenshots of every page (1280x800, 390 px, dark) into screenshots/
	$(PY) manage.py screenshots --out screenshots

lock: ## Re-lock the Python dependencies from pyproject.toml
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements/main.txt
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.txt

clean: ## Remove the virtualenv, node_modules and local data (var/)
	rm -rf $(VENV) node_modules var
