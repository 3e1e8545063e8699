# `make help` lists the targets.  Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NMT := $(VENV)/bin/nmt
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install test test-fast lint format typecheck train bench results clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install nmt with its test and lint tools

test: install  ## run the whole test suite (unit, config, integration)
	$(PY) -m pytest

test-fast: install  ## the suite without tests marked slow
	$(PY) -m pytest -m "not slow"

lint: install  ## ruff (style and errors) and the import-layer contracts
	$(VENV)/bin/ruff check nmt tests scripts
	$(VENV)/bin/ruff format --check nmt tests scripts
	cd $(CURDIR) && $(VENV)/bin/lint-imports

format: install  ## apply ruff's formatter and fixes
	$(VENV)/bin/ruff format nmt tests scripts
	$(VENV)/bin/ruff check --fix nmt tests scripts

typecheck: install  ## mypy on the package
	$(VENV)/bin/mypy

train: install  ## train the default recipe (finds or downloads Multi30k); ARGS="key=value ..."
	$(NMT) train $(ARGS)

BENCH_ARGS ?= --steps 10 --threads 1
CKPT ?=
results: install  ## train/reuse every recipe, evaluate, write docs/results.md/.json; ARGS="--extra ..."
	$(PY) scripts/results.py $(ARGS)

bench: install  ## training speed vs the tutorials' loop (docs/performance.md); CKPT=best.pt adds bench_translate
	for r in bahdanau_seed sutskever_seed cho_seed luong_seed; do \
		$(PY) scripts/bench_train.py --recipe $$r --teacher-forcing 0.5 $(BENCH_ARGS) || exit 1; done
	for r in bahdanau_seed sutskever_seed; do \
		$(PY) scripts/bench_train.py --recipe $$r --teacher-forcing 1.0 $(BENCH_ARGS) || exit 1; done
	if [ -n "$(CKPT)" ]; then $(PY) scripts/bench_translate.py --checkpoint $(CKPT); fi

clean:  ## remove caches (keeps .venv, data/ and outputs/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
