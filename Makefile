# bn-study: `make help` lists the targets. Every target installs into .venv first if needed.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STUDY ?= fig1
# QUICK=1 make <study>: the small version (tests, CI), in results/<study>_quick/.
ifdef QUICK
ARGS += quick=true
SUFFIX := _quick
endif
STUDIES := keras_blog placement lr_sensitivity inception_table dropout init_scale batch_size input_bn mechanisms

.PHONY: help install test test-slow reproduce fig1 fig1-pilot studies report $(STUDIES) collect figures notebooks notebooks-sync bench clean-runs

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@# Strip notebook outputs on commit (a git filter in this clone's .git/config).
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/nbstripout --install; fi
	@touch $@

install: $(INSTALLED) ## Create .venv and install bn-study with its dev extras (every target does this when needed)

test: $(INSTALLED) ## Run the fast tests (a few minutes here)
	$(BIN)/python -m pytest -q

test-slow: $(INSTALLED) ## Run the slower end-to-end tests
	$(BIN)/python -m pytest -q -m slow

reproduce: fig1 ## The main job: the Figure 1 study (= make fig1)

fig1: $(INSTALLED) ## Figure 1 of Ioffe & Szegedy: 2 runs x 50,000 steps, then results/fig1/{fig1.png,pdf,csv,summary.md}
	$(BIN)/bn-study -m experiment=fig1 $(ARGS)
	$(MAKE) --no-print-directory figures STUDY=fig1

fig1-pilot: $(INSTALLED) ## Why fig1 uses lr 2.0: both arms, lr 0.1..8, 10,000 steps -> results/fig1_pilot/runs.csv
	$(BIN)/bn-study -m experiment=fig1 study=fig1_pilot optimizer.lr=0.1,0.5,1,2,4,8 trainer.steps=10000 $(ARGS)
	$(BIN)/bn-study-collect fig1_pilot

keras_blog: ## Keras-blog CNN: lr x activation x BN, 3 seeds (36 runs, ~6 min here)
placement: ## BN none/before/after x sigmoid/tanh/relu on the MLP, and the tutorial's circles (36 runs, ~4 min)
lr_sensitivity: ## Final accuracy over lr 1e-3..10, BN vs none, sigmoid and relu (108 runs, ~10 min)
inception_table: ## The paper's Section 4.2 variants on the small CNN, steps-to-accuracy table (18 runs, ~10 min)
dropout: ## Dropout 0/0.2/0.5 x no BN / BN / dropout before BN, with the variance shift (27 runs, ~3 min)
init_scale: ## Final accuracy over init std 1e-3..10, BN vs none (54 runs, ~5 min)
batch_size: ## Batch size 2..256 at equal examples seen: no BN, BN, BN + renorm (72 runs, ~10 min)
input_bn: ## BN on raw inputs vs standardised inputs vs neither (12 runs, ~1.5 min)
mechanisms: ## Inside the network: ICS, loss landscape, saturation, gradients, train vs inference BN by momentum (15 runs, ~2 min)

$(STUDIES): $(INSTALLED)
	$(BIN)/bn-study -m experiment=$@ $(ARGS)
	$(if $(filter placement,$@),$(BIN)/bn-study -m experiment=placement_circles $(ARGS) && $(BIN)/bn-study-collect placement_circles$(SUFFIX))
	$(if $(filter mechanisms,$@),$(BIN)/bn-study -m experiment=mechanisms_momentum $(ARGS) && $(BIN)/bn-study-collect mechanisms_momentum$(SUFFIX))
	$(MAKE) --no-print-directory figures STUDY=$@$(SUFFIX)

studies: fig1 $(STUDIES) ## Every study above, then results/REPORT.md
	$(MAKE) --no-print-directory report

report: $(INSTALLED) ## results/REPORT.md from the studies' collected tables
	$(BIN)/bn-study-report

collect: $(INSTALLED) ## Gather the newest sweep of STUDY (default fig1) into results/STUDY/{runs.csv,curves.parquet,by_config.csv}
	$(BIN)/bn-study-collect $(STUDY)

figures: collect ## Collect STUDY, then draw its figures and summary
	$(BIN)/bn-study-figures $(STUDY)

bench: $(INSTALLED) ## Speed: the Figure 1 protocol as the tutorials train, as bare Keras, and in bn-study -> results/bench/ (~12 min)
	$(BIN)/bn-study-bench

NOTEBOOKS := $(wildcard notebooks/*.py)

notebooks: $(INSTALLED) ## Execute every notebook (papermill) on the committed results -> results/notebooks/*.ipynb
	@mkdir -p results/notebooks
	@for nb in $(NOTEBOOKS:.py=.ipynb); do \
		echo "executing $$nb -> results/notebooks/$$(basename $$nb)"; \
		$(BIN)/papermill --cwd . --kernel python3 --no-progress-bar --log-level WARNING $$nb results/notebooks/$$(basename $$nb) -p results results || exit 1; \
	done

notebooks-sync: $(INSTALLED) ## After editing a notebook (either file of a pair): sync the .py and .ipynb, strip outputs
	$(BIN)/jupytext --sync $(NOTEBOOKS)
	$(BIN)/nbstripout $(NOTEBOOKS:.py=.ipynb)

clean-runs: ## Delete the raw run folders (git-ignored) of every study; collected tables and figures stay
	rm -rf results/*/runs results/*/sweeps
