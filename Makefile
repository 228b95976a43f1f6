# triage-ml: `make run` and `make test` are the two set-up commands (see README).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Models are never downloaded at run time: the encoder comes from an installed package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Label Studio (the server leads review in) pins its own Django stack: it lives in a virtual environment of
# its own, used by the tests and by anyone who wants a local one (see README, "Lead reviews").
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed-stamp
LABEL_STUDIO_VERSION := 1.23.2

.PHONY: install labelstudio browser run train test lint bench-xci clean-mlruns

install: $(STAMP)

labelstudio: $(LS_STAMP)

$(LS_STAMP):
	@test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q label-studio==$(LABEL_STUDIO_VERSION)
	@touch $@

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

# browser: Debian's Chromium and ChromeDriver, for the test that looks at a lead's Label Studio screen (no tool
# downloads a browser build of its own). Needs root or sudo; without them the test says what is missing.
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	  echo "warning: apt-get could not install chromium and chromium-driver; the browser test will fail in CI"

HOST ?= 127.0.0.1
PORT ?= 8000

## run: install, train on the bundled data (seed + real-train) if no model is registered, start the service
run: install
	@$(BIN)/triage-ml dev-keys
	$(BIN)/triage-ml train --if-missing
	@$(BIN)/triage-ml model info
	@echo "API docs: http://$(HOST):$(PORT)/docs"
	$(BIN)/triage-ml serve --host $(HOST) --port $(PORT)

## train: always train (and register; promoted only if no worse than the champion)
train: install
	$(BIN)/triage-ml train

## test: install (and Label Studio and Chromium for their integration tests, at once), run the linter and every test,
## on TEST_WORKERS processes (pytest-xdist, a test module at a time; tests/conftest.py says how they are dealt)
TEST_WORKERS ?= 2
test:
	@$(MAKE) --no-print-directory -j2 install labelstudio browser
	$(BIN)/ruff check src tests benchmarks serving
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check src tests benchmarks serving

## bench-xci: the complaints benchmark (10-fold CV), one JSON line
bench-xci: install
	$(BIN)/python benchmarks/xci.py
