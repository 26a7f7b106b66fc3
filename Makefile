# Two commands on a fresh machine: `make demo` (the whole study, offline, on CPU) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
CLUSTER := $(VENV)/.cluster-installed
MUTATE := $(VENV)/.mutate-installed
DEMO := --profile profiles/demo
SMOKE := --profile profiles/smoke-full

.PHONY: demo report test test-cluster smoke-full bench bench-gpu mutate lint format dry-run clean-demo study-config-json

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

$(MUTATE): requirements-mutate.txt $(DEV)
	$(BIN)/pip install --quiet -r requirements-mutate.txt
	touch $@

## demo: install, then run the whole study offline on a generated dataset (results/demo/) and its report;
## last, check that every model beats chance (from its predictions alone)
demo: $(RUNTIME)
	$(BIN)/snakemake $(DEMO)
	$(BIN)/snakemake $(DEMO) --report results/demo/report.html
	$(BIN)/python tests/smoke/beats_chance.py results/demo
	@echo "Demo done: open results/demo/report.html, or read results/demo/tables/summary.md"

## report: the HTML report of the full study (after `snakemake --cores 4 --resources gpu=1`)
report: $(RUNTIME)
	$(BIN)/snakemake --report results/report.html

## test: install, then run the test suite (offline, CPU)
test: $(DEV)
	$(BIN)/python -m pytest

## test-cluster: a model's chain, the tables and the report through a real one-machine SLURM cluster (root)
test-cluster: $(CLUSTER)
	SNAKEMAKE=$(BIN)/snakemake bash tests/cluster/run_slurm_demo.sh

## smoke-full: the study's full-size models end to end on the CPU (160 px, 1 epoch), peak memory per
## job, and the inference memory bound at 160 px under a 2 GiB job limit (64 images: chunks of 10)
smoke-full: $(RUNTIME)
	$(BIN)/snakemake $(SMOKE)
	$(BIN)/python tests/smoke/peak_memory.py logs/smoke-full
	$(BIN)/python tests/bench/bench_memory.py --available-gb 2 --images 64

## bench: numbers: the conv stub; our loop against a textbook one; FLOPs and a GPU projection; the claims
## check's false-positive rate and power by seeds; the memory bound of a 512-image evaluation and probe at
## 160 px under a 2 GiB job limit
bench: $(RUNTIME)
	$(BIN)/python tests/bench/bench_conv_stub.py
	$(BIN)/python tests/bench/bench_training.py
	$(BIN)/python tests/bench/bench_flops.py
	$(BIN)/python tests/bench/bench_claims.py
	$(BIN)/python tests/bench/bench_memory.py --available-gb 2 --images 512

## bench-gpu: the study's models at full size on a GPU, with the project's venv where it exists, else
## a bare python3 that has torch (a GPU image without Snakemake)
bench-gpu:
	@python=$$( [ -x $(BIN)/python ] && echo $(BIN)/python || echo python3 ); \
	if ! $$python -c "import torch" 2>/dev/null; then \
		echo "make bench-gpu: $$python has no torch; run make demo first, or use a python3 with torch"; \
		exit 1; \
	fi; \
	$$python tests/bench/bench_gpu.py

## mutate: mutation score of the analysis core against its fast unit tests, per module, and every surviving
## mutant (a benchmark, not part of make test: about 31 minutes on 2 cores; docs/development.md). mutmut
## runs in .mutate/, where src/ links to workflow/, so the mutated package imports as `cnnstudy`
mutate: $(MUTATE)
	rm -rf .mutate && mkdir -p .mutate/mutants
	for path in tests pyproject.toml config.yaml profiles; do ln -s ../$$path .mutate/$$path; done
	ln -s ../workflow .mutate/src
	ln -s src .mutate/mutants/workflow
	cd .mutate && OMP_NUM_THREADS=1 ../$(BIN)/mutmut run
	$(BIN)/python tests/mutation/score.py .mutate

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

## study-config-json: refresh the GPU benchmark's copy of config.yaml (for machines without PyYAML)
study-config-json: $(RUNTIME)
	$(BIN)/python -c "import json, yaml; print(json.dumps(yaml.safe_load(open('config.yaml')), indent=1))" \
		> tests/bench/study_config.json

clean-demo:
	rm -rf results/demo logs/demo benchmarks/demo resources/demo resources/datasets/imagenette-demo
