# The README's commands. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_DIR := tests/node
# The browser test (tests/test_browser_sse.py) drives Debian's Chromium at this path (the same variable tells the test).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

# `make dist`: the single executable file, built by packaging/build_dist.py in an environment of its own. The build
# needs a Python with a shared libpython (Debian's python3.11 with libpython3.11), a C compiler and libzstd-dev.
DIST_PYTHON ?= $(shell command -v /usr/bin/python3.11 || echo $(PYTHON))
DIST_VENV := build/dist-venv
ARCH ?= $(shell uname -m)

.PHONY: install node browser run test bench lint clean dist test-dist

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

# The Node runtime client builds a native addon (about 50 s); node_modules is kept between runs.
node: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --foreground-scripts
	touch $@

# As root with apt-get, install Chromium when it is missing (no prompt, no standard input); elsewhere say how, and the
# browser test skips itself (under CI, PYRIE_REQUIRE_BROWSER=1, it fails instead). Never fails the build itself.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "installing chromium for the browser test: apt-get install -y chromium"; \
	        export DEBIAN_FRONTEND=noninteractive; \
	        apt-get install -y -q chromium </dev/null >/dev/null 2>&1 \
	            || { apt-get update -q </dev/null >/dev/null && apt-get install -y -q chromium </dev/null >/dev/null; } \
	            || echo "apt-get could not install chromium"; \
	    fi; \
	    [ -x "$(CHROMIUM)" ] || echo "$(CHROMIUM) is missing, so the browser test is skipped; install it with: sudo apt-get install chromium"; \
	fi

run: install
	cd examples/python-sse && ../../$(VENV)/bin/pyrie app.handler

test: install node browser
	$(PY) -m pytest $(PYTEST_ARGS)

# pyrie is measured as installed: with its bytecode compiled, as pip does when it installs a package (here, where
# PYTHONDONTWRITEBYTECODE may be set, every start would compile pyrie's sources again).
bench: install
	$(PY) -m compileall -q -j0 pyrie_core supervisor runtime_api invoke_api pyrie_durable pyrie_runtime_client
	$(PY) -m bench $(BENCH_ARGS)

ifeq ($(ARCH),$(shell uname -m))
dist: $(DIST_VENV)/.installed
	$(DIST_VENV)/bin/python packaging/build_dist.py --out dist
else
# Another architecture: the same build in a Debian root of that architecture, through qemu-user-static (root).
dist:
	$(PYTHON) packaging/build_foreign.py --arch $(ARCH) --out dist
endif

# The single file in a root file system without Python (tests/test_dist_file.py): needs root and debootstrap.
test-dist: dist install node
	PYRIE_DIST_FILE=$$(ls -t dist/pyrie-*-linux-$(ARCH) | head -n 1) $(PY) -m pytest tests/test_dist_file.py $(PYTEST_ARGS)

$(DIST_VENV)/.installed: setup.cfg pyproject.toml
	$(DIST_PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DIST_VENV)/bin/python -m pip install --quiet '.[dist]'
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache build dist
