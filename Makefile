# Two commands on a fresh machine: `make demo` (the whole study, offline, on CPU) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
CLUSTER := $(VENV)/.cluster-installed
DEMO := --profile profiles/demo

.PHONY: demo report test test-cluster bench lint format dry-run clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV): requirements-dev.txt $(RUNTIME)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(CLUSTER): requirements-cluster.txt $(RUNTIME)
	$(BIN)/pip install --quiet -r requirements-cluster.txt
	touch $@

## demo: install, then run the whole study offline on a generated dataset (results/demo/)
demo: $(RUNTIME)
	$(BIN)/snakemake $(DEMO)
	$(BIN)/snakemake $(DEMO) --report results/demo/report.html
	@echo "Demo done: results/demo/tables/summary.md, results/demo/figures/, results/demo/report.html"

## report: the HTML report of the full study (after `snakemake --cores 4 --resources gpu=1`)
report: $(RUNTIME)
	$(BIN)/snakemake --report results/report.html

## test: install, then run the test suite (offline, CPU)
test: $(DEV)
	$(BIN)/python -m pytest

## test-cluster: the demo through a real one-machine SLURM cluster (root; installs Debian packages)
test-cluster: $(CLUSTER)
	SNAKEMAKE=$(BIN)/snakemake bash tests/cluster/run_slurm_demo.sh

## bench: speed measurements that print numbers (conv stub vs F.conv2d; training loop vs textbook loop)
bench: $(RUNTIME)
	$(BIN)/python tests/bench/bench_conv_stub.py
	$(BIN)/python tests/bench/bench_training.py

## lint: snakemake --lint, snakefmt and ruff, all checks without changing files
lint: $(DEV)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(DEV)
	$(BIN)/snakefmt Snakefile workflow/rules
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## dry-run: what the full study would run, without running it
dry-run: $(RUNTIME)
	$(BIN)/snakemake -n --cores 4 --resources gpu=1

clean-demo:
	rm -rf results/demo logs/demo benchmarks/demo resources/demo resources/datasets/imagenette-demo
