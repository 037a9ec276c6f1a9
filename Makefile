# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv with the machine's python3 on first use and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo demo-modules test lint docs bench clean test-browser screenshots chromium \
	test-aarch64

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setup.py and the C source too: a changed library is rebuilt (the editable install copies it
# into pytest_edge/syscalls/).
$(STAMP): pyproject.toml setup.py pytest_edge/syscalls/edgeio.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,thirdparty]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The docs site, built strictly (a broken link or a failing generated page fails), into a
# temporary directory removed afterwards; `$(BIN)/mkdocs serve` previews it.
docs: install
	@site=$$(mktemp -d) && trap 'rm -rf "$$site"' EXIT && \
	    $(BIN)/mkdocs build --strict --quiet --site-dir "$$site" && echo "docs: mkdocs build --strict ok"

test: lint docs
	$(BIN)/pytest -n 2

# The HTML report in a real browser (tests/report/browser, skipped by `make test`: it makes
# real reports, minutes on two cores): headless Chromium from the OS packages, installed with
# apt-get when missing (with sudo when not root). .ci/run calls it after `make test`.
test-browser: install chromium
	EDGE_BROWSER_TESTS=1 $(BIN)/pytest -p no:xdist tests/report/browser

# docs/report-demo.png and docs/report-failing.png (shown in the README and docs/reports.md).
screenshots: install chromium
	$(BIN)/python -m tests.report.browser.screenshots docs

chromium:
	@if [ -n "$$EDGE_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || \
	    command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium: not on PATH and no apt-get to install it: install Chromium" \
	         "(or set EDGE_CHROMIUM to its binary)" >&2; \
	    exit 1; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else echo "chromium: not on PATH; installing it needs root or sudo (apt-get install chromium)" >&2; \
	    exit 1; fi; \
	echo "chromium: installing Debian's chromium package with apt-get"; \
	$$sudo apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
	{ echo "chromium: apt-get install chromium failed (see above)" >&2; exit 1; }

# The system-call library on aarch64 (a Raspberry Pi's architecture): cross-built with -Werror
# and run under qemu-user (Debian's gcc-aarch64-linux-gnu and qemu-user, installed with apt-get
# when missing). .ci/run calls it after `make test`.
test-aarch64: install
	@if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	    echo "test-aarch64: installing gcc-aarch64-linux-gnu and qemu-user with apt-get"; \
	    $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu qemu-user || \
	    { echo "test-aarch64: apt-get install gcc-aarch64-linux-gnu qemu-user failed (see above)" >&2; exit 1; }; \
	fi
	$(BIN)/pytest -p no:xdist -q tests/syscalls/test_aarch64.py

# The main job: the shipped resilience scenarios on a simulated Raspberry Pi, with a report.
DEMO_ARGS ?= --edge-profile=raspberry-pi --edge-report=edge-report.html
demo: install
	$(BIN)/pytest -p no:cacheprovider scenarios/ $(DEMO_ARGS)
	@echo "edge report: $(CURDIR)/edge-report.html"

# The reference modules' own demos (each prints the chapter notebook's figures). reference_impl is
# not installed (the package is pytest_edge only): run from the repository root with -m.
demo-modules: install
	@for module in memory_management production_patterns context_optimization \
	               concurrency_management database_optimization self_healing; do \
	    echo "=== reference_impl/$$module.py"; \
	    $(BIN)/python -m reference_impl.$$module || exit 1; \
	done

bench: install
	$(BIN)/pytest -p no:xdist tests/bench -m timing --run-slow
	$(BIN)/pytest -p no:xdist tests/benchmarks --run-slow --benchmark-autosave \
	    --edge-compare=history --edge-report=.benchmarks/edge-report.html

clean:
	rm -rf $(VENV) edge-report.html .pytest_cache .mypy_cache .ruff_cache .benchmarks build site *.egg-info
