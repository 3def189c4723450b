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

.PHONY: install node browser run test soak bench lint clean dist test-dist

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

# The Node runtime client builds a native addon (about 50 s). A built node_modules is kept outside the checkout, in
# NODE_CACHE, under the hash of package.json and package-lock.json, Node's version and the machine: another clone (or
# this one after `make clean`) copies it in a second or two instead of building it again. `rm -rf $(NODE_CACHE)`
# forgets it.
NODE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/pyrie/node_modules
node: $(NODE_DIR)/node_modules/.installed

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@key=$$(cat $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | sha256sum | cut -c1-16)-node$$(node --version)-$$(uname -m); \
	cached="$(NODE_CACHE)/$$key"; \
	if [ -f "$$cached/.installed" ]; then \
	    echo "node_modules: a copy of $$cached"; \
	    rm -rf $(NODE_DIR)/node_modules && cp -a "$$cached" $(NODE_DIR)/node_modules; \
	else \
	    (cd $(NODE_DIR) && npm ci --no-audit --no-fund --foreground-scripts) && \
	    touch $(NODE_DIR)/node_modules/.installed && \
	    mkdir -p "$(NODE_CACHE)" && new=$$(mktemp -d "$(NODE_CACHE)/.new-XXXXXX") && \
	    cp -a $(NODE_DIR)/node_modules/. "$$new" && \
	    { mv -T "$$new" "$$cached" 2>/dev/null || rm -rf "$$new"; }; \
	fi
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

# `make test`: every test but the long runs, PYTEST_WORKERS at a time (pytest-xdist; most tests wait on real
# processes, so more of them than cores). `make soak`: the long runs alone, one at a time (the 120 s chaos soak, the
# 20,000-invoke soak). The rule for a new test: one that takes more than 20 s is marked `@pytest.mark.soak`
# (`make test` names any that ran that long without it). PYTEST_ARGS go to pytest, for example -k NAME or -x.
PYTEST_WORKERS ?= 4
test: install node browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not soak" $(PYTEST_ARGS)

soak: install node browser
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

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
