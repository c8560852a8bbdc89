# Empathy Web developer commands. `make demo` to see it, `make test` to check it.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: venv system-deps test bench demo demo-cluster lint format

venv: $(STAMP)

# Re-install when pyproject.toml changes or a top-level package appears (the editable
# install maps only the packages that existed when it ran).
$(STAMP): pyproject.toml $(wildcard memory/__init__.py empathy_web/__init__.py)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[dev,postgres]'
	touch $(STAMP)

# Installs redis-server, PostgreSQL and Chromium (for browser tests) when missing. Starts
# no system service: the tests start their own servers.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

# Browser tests run as their own pytest process (see tests/e2e/conftest.py); the web
# suite runs again on a throwaway PostgreSQL (tests/postgres_server.py).
test: venv system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q
	$(VENV)/bin/python -m tests.postgres_server $(VENV)/bin/pytest -q tests/web
	DJANGO_TEST_DB_FILE=.test-e2e.sqlite3 DJANGO_ALLOW_ASYNC_UNSAFE=true \
		$(VENV)/bin/pytest -q -m e2e tests/e2e

bench: venv system-deps
	$(VENV)/bin/pytest -m benchmark -s tests/benchmarks

demo: venv
	DJANGO_DEBUG=true $(VENV)/bin/python manage.py demo

# A Redis Cluster, PostgreSQL, two uvicorn workers (8000, 8001), two bridges and the
# simulated team, all on loopback (tests/demo_cluster.py); Ctrl-C stops it all.
demo-cluster: venv system-deps
	$(VENV)/bin/python -m tests.demo_cluster

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
