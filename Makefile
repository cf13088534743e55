# roost: developer entry points. Every target sets up what it needs first.
#
#   make demo        install everything, then run roost's main job (roost run debian:12 -- git --version)
#   make test        install everything, then run the test suite (pytest -n auto)
#   make smoke       install everything, then run the recipes in docs/recipes/ as written
#   make check       lint + format check + mypy --strict on src/ + tests, also as a normal user (what CI runs)
#   make help        all targets

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:
MAKEFLAGS += --no-print-directory

# scripts/bootstrap.sh installs uv here when the machine has none.
export PATH := $(CURDIR)/.cache/bootstrap/bin:$(PATH)
# uv must never try to download a Python build; Debian 12's 3.11 is enough.
export UV_PYTHON_DOWNLOADS ?= never

# uv trusts its bundled roots by default; behind a TLS-inspecting proxy only the
# system store has the proxy's CA (scripts/bootstrap.sh does the same).
ifeq ($(origin SSL_CERT_FILE),undefined)
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
export SSL_CERT_FILE := /etc/ssl/certs/ca-certificates.crt
endif
endif

UV_RUN := uv run --frozen
PY_PATHS := $(wildcard src tests benchmarks scripts examples)
PYTEST_ARGS ?=

.PHONY: help setup system-deps bootstrap images demo test smoke test-unprivileged check lint fmt format-check typecheck dist-check bench clean ui-assets

help: ## show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## install missing Debian packages (scripts/install-system-deps.sh)
	@bash scripts/install-system-deps.sh

bootstrap: ## install uv if missing, then uv sync the venv
	@bash scripts/bootstrap.sh

setup: system-deps bootstrap ## system packages + uv + venv

demo: setup ## run roost's main job: roost run debian:12 -- git --version
	@bash scripts/demo.sh

# The sandbox and QEMU tests share one image cache (.cache/images); build what
# they need once per machine, outside the timed test run.
images: setup ## build the shared test images into .cache/images if they are missing
	@bash scripts/prepare-test-images.sh

test: setup images ## run the test suite (no tests collected counts as failure)
	@rc=0; $(UV_RUN) pytest -n auto $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; \
	exit $$rc

# The recipes of docs/recipes/, each run as written by the docs checker (tests/e2e/test_docs.py).
smoke: setup images ## run the recipes in docs/recipes/ as written (sandbox where it runs, else mock)
	$(UV_RUN) pytest -q tests/e2e/test_docs.py -k recipes $(PYTEST_ARGS)

# As root: the sandbox contract and security tests again as a normal user (created once,
# with subordinate ids; it stays). Skips with a reason where that cannot run.
test-unprivileged: setup images ## as root: the sandbox contract + security tests as a normal user
	@bash scripts/test-unprivileged.sh $(PYTEST_ARGS)

lint: bootstrap ## ruff check
	$(UV_RUN) ruff check $(PY_PATHS)

format-check: bootstrap ## ruff format --check
	$(UV_RUN) ruff format --check $(PY_PATHS)

fmt: bootstrap ## ruff format + safe ruff fixes
	$(UV_RUN) ruff format $(PY_PATHS)
	$(UV_RUN) ruff check --fix $(PY_PATHS)

typecheck: bootstrap ## mypy (strict on src/)
	$(UV_RUN) mypy

# Prerequisites run in order (no -j here), so the cheap checks fail first.
check: setup lint format-check typecheck test test-unprivileged ## lint + format check + typecheck + tests, also as a normal user (CI runs this)

dist-check: bootstrap ## build wheel+sdist, install the wheel in a fresh venv, smoke the installed roost
	@bash scripts/dist-check.sh

bench: setup images ## prepare what they measure (as test does), run the benchmarks; one JSON document on stdout and in .bench/results.json
	@mkdir -p .bench
	@$(UV_RUN) python -m benchmarks --output .bench/results.json

# The dashboard's browser libraries, pinned by src/roost/ui/assets/package-lock.json and
# copied into src/roost/ui/static/vendor/, which is committed: installing roost needs no npm.
UI_ASSETS := src/roost/ui/assets
UI_VENDOR := src/roost/ui/static/vendor
ui-assets: ## rebuild the dashboard's vendored JS/CSS from package.json + lock (needs npm)
	cd $(UI_ASSETS) && npm ci --no-audit --no-fund
	mkdir -p $(UI_VENDOR)
	cp $(UI_ASSETS)/node_modules/@xterm/xterm/lib/xterm.js $(UI_ASSETS)/node_modules/@xterm/xterm/css/xterm.css \
	   $(UI_ASSETS)/node_modules/@xterm/addon-fit/lib/addon-fit.js \
	   $(UI_ASSETS)/node_modules/diff2html/bundles/js/diff2html-ui-slim.min.js \
	   $(UI_ASSETS)/node_modules/diff2html/bundles/css/diff2html.min.css $(UI_VENDOR)/
	cp $(UI_ASSETS)/node_modules/highlight.js/styles/github.min.css $(UI_VENDOR)/highlight-github.min.css
	sed -i '/sourceMappingURL=/d' $(UI_VENDOR)/xterm.js $(UI_VENDOR)/addon-fit.js  # the maps are not shipped
	for pkg in @xterm/xterm @xterm/addon-fit diff2html highlight.js; do \
	  printf '%s %s\n' "$$pkg" "$$(node -p "require('./$(UI_ASSETS)/node_modules/$$pkg/package.json').version")"; \
	done > $(UI_VENDOR)/VERSIONS

clean: ## remove build output and caches (keeps .venv; `make clean-all` removes it too)
	rm -rf dist build .bench .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . \( -path ./.venv -o -path ./.git -o -path ./.cache \) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

.PHONY: clean-all
clean-all: clean ## clean, and remove .venv and the bootstrap uv
	rm -rf .venv .cache/bootstrap
