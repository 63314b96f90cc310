# bn-study: `make help` lists the targets. Every target installs into .venv first if needed.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEV_INSTALLED := $(VENV)/.installed-dev
# The TensorFlow build, an extra of bn-study: cpu here; EXTRAS=cuda on a CUDA machine (docs/install.md).
EXTRAS ?= cpu
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
STUDY ?= fig1
# QUICK=1 make <study>: the small version (tests, CI), in results/<study>_quick/.
ifdef QUICK
VERSION_FLAGS := --quick
endif
# DATA=fashion_mnist make <study>: its MNIST sweeps on that dataset (mnist, mnist5k, fashion_mnist), in results/<study>_<data>/.
ifdef DATA
VERSION_FLAGS += --data $(DATA)
endif
# LAUNCHER="hydra/launcher=submitit_slurm hydra.launcher.partition=cpu" make <study>: every sweep of the study on that
# launcher (its settings only: what the runs train is the study's).
ifdef LAUNCHER
LAUNCHER_FLAGS := --launcher "$(LAUNCHER)"
endif
# TRAIN_SIZE=3600 make <study>: its MNIST sweeps on a fixed stratified 3,600 of the training images, in results/<study>[_<data>]_n3600/.
ifdef TRAIN_SIZE
VERSION_FLAGS += --train-size $(TRAIN_SIZE)
endif
STUDIES_CLI := $(BIN)/bn-study-studies

.PHONY: help install install-dev test format test-slow test-slurm test-ray test-gpu reproduce study fig1 fig1-fashion fig1-pilot studies list check report collect seeds figures verify fashion-mnist notebooks notebooks-sync bench clean-runs

help: ## List the targets, and the studies (each is a target: make <study>)
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  make <study>     Run a study end to end: its sweeps, collect, verdicts, figures (QUICK=1: the small version)"
	@if test -x $(STUDIES_CLI); then $(STUDIES_CLI) list | sed 's/^/    /'; else echo "    (make install, then make help lists the studies)"; fi

$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[$(EXTRAS)]"
	@touch $@

$(DEV_INSTALLED): $(INSTALLED)
	$(PIP) -e ".[$(EXTRAS),dev]"
	@# Strip notebook outputs on commit (a git filter in this clone's .git/config).
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/nbstripout --install; fi
	@touch $@

install: $(INSTALLED) ## Create .venv and install bn-study and TensorFlow (EXTRAS=cpu; cuda on a GPU machine); every target does this when needed
install-dev: $(DEV_INSTALLED) ## install, plus what the tests and notebooks need (make test does this when needed)

test: $(DEV_INSTALLED) ## Lint and format check (ruff), the unit tests (no TensorFlow), then the rest two at a time
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q tests/unit
	$(BIN)/python -m pytest -q -n 2 --durations=15 --ignore=tests/unit

format: $(DEV_INSTALLED) ## Format the code and fix what the linter can (ruff); make test checks both
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-slow: $(DEV_INSTALLED) ## Run the slower end-to-end tests (every study's quick version, the wheel in a fresh venv)
	$(BIN)/python -m pytest -q -m slow

test-slurm: $(DEV_INSTALLED) ## On a one-node SLURM cluster this starts and stops (root; apt-get install slurm-wlm slurmdbd munge mariadb-server): sweeps, cancel, resume, a study
	$(BIN)/python -m pytest -q -m cluster tests/clusters/test_slurm.py

test-ray: $(DEV_INSTALLED) ## On a Ray head this starts and stops (ray start --head): a sweep joined with address=auto, collected
	$(BIN)/python -m pytest -q -m cluster tests/clusters/test_ray.py

test-gpu: $(DEV_INSTALLED) ## On a CUDA machine (install with EXTRAS=cuda): a GPU is seen, then the fast tests and fig1's quick version on it
	@TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -c "import sys, tensorflow as tf; sys.exit(0 if tf.config.list_physical_devices('GPU') else 'make test-gpu: TensorFlow sees no GPU (on a CUDA machine: make install EXTRAS=cuda)')"
	$(BIN)/python -m pytest -q
	QUICK=1 $(MAKE) fig1

reproduce: fig1 ## The main job: the Figure 1 study (= make fig1)

fig1: $(INSTALLED) ## Figure 1 of Ioffe & Szegedy: 2 arms x 10 seeds x 50,000 steps, then results/fig1/{fig1.png,pdf,csv,summary.md,verdicts.json}
	$(STUDIES_CLI) run fig1 $(VERSION_FLAGS) $(LAUNCHER_FLAGS)

fig1-fashion: $(INSTALLED) ## Figure 1 on the full Fashion-MNIST (60,000 images): installs it, its pilot, fig1 and fig1_second_lr at the rates the pilot selects -> results/fig1*_fashion_mnist/
	@$(MAKE) --no-print-directory fashion-mnist
	$(STUDIES_CLI) run fig1_pilot fig1 fig1_second_lr --data fashion_mnist $(if $(QUICK),--quick) $(LAUNCHER_FLAGS)

fig1-pilot: fig1_pilot ## Why fig1 uses its learning rate: lr 0.1..8 x both arms x 5 seeds, selected on validation -> results/fig1_pilot/

studies: $(INSTALLED) ## Every registered study (their committed run time: README's table of studies), then results/REPORT.md
	$(STUDIES_CLI) run --all $(VERSION_FLAGS) $(LAUNCHER_FLAGS)
	$(MAKE) --no-print-directory report

study: $(INSTALLED) ## A study declared in a YAML file, end to end like a registered one: make study FILE=path/to/question.yaml (docs/studies.md)
	@test -n "$(FILE)" || { echo "make study: FILE=path/to/study.yaml is needed (docs/studies.md)" >&2; exit 2; }
	$(STUDIES_CLI) run $(FILE) $(VERSION_FLAGS) $(LAUNCHER_FLAGS)

list: $(INSTALLED) ## The registered studies, their sweeps and claims
	@$(STUDIES_CLI) list

check: $(INSTALLED) ## Compose every study's planned runs and check its claims against them (nothing runs)
	$(STUDIES_CLI) check $(VERSION_FLAGS)

report: $(INSTALLED) ## results/REPORT.md and README's results block, from every study's verdicts.json
	$(STUDIES_CLI) report

collect: $(INSTALLED) ## Gather the newest sweep of each of STUDY's experiments into results/STUDY/ (runs.csv, curves.parquet, by_config.csv)
	$(STUDIES_CLI) collect $(STUDY) $(VERSION_FLAGS)

seeds: $(INSTALLED) ## Add to STUDY's collected runs the seeds its undecided claims' next looks need (5 -> 10 -> 20), judge and draw again
	$(STUDIES_CLI) seeds $(STUDY) $(VERSION_FLAGS) $(LAUNCHER_FLAGS)

figures: $(INSTALLED) ## Judge STUDY's claims and draw its figures and summary from its collected tables (works on a fresh clone)
	$(STUDIES_CLI) render $(STUDY) $(VERSION_FLAGS)

verify: $(INSTALLED) ## Check results/ after a crash or a copy: finished runs against run.json, tables against collection.json
	$(BIN)/bn-study-verify

FASHION_MNIST := /usr/share/datasets/fashion-mnist
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

fashion-mnist: ## The full Fashion-MNIST (70,000 images) offline, for data=fashion_mnist: Debian's dataset-fashion-mnist
	@if test -d $(FASHION_MNIST); then echo "Fashion-MNIST is installed: $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null; then $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else echo "no apt-get here: put the four IDX files of https://github.com/zalandoresearch/fashion-mnist in a folder and run with data=fashion_mnist data.path=<that folder> (or let keras.datasets download them)"; exit 1; fi

# Any other target is a study's name: the registry (bn-study-studies list) says which exist.
.DEFAULT:
	@$(MAKE) --no-print-directory $(INSTALLED)
	$(STUDIES_CLI) run $@ $(VERSION_FLAGS) $(LAUNCHER_FLAGS)

bench: $(INSTALLED) ## Speed: Figure 1's MLP as the tutorials train, as bare Keras and in bn-study; the Keras-blog CNN against bare TensorFlow; where a study's time goes; the quick path -> results/bench/
	$(BIN)/bn-study-bench
	$(BIN)/bn-study-bench-cnn
	$(BIN)/bn-study-bench-studies
	$(BIN)/bn-study-bench-quick

NOTEBOOKS := $(wildcard notebooks/*.py)

notebooks: $(DEV_INSTALLED) ## Execute every notebook (papermill) on the committed results -> results/notebooks/*.ipynb
	@mkdir -p results/notebooks
	@for nb in $(NOTEBOOKS:.py=.ipynb); do \
		echo "executing $$nb -> results/notebooks/$$(basename $$nb)"; \
		$(BIN)/papermill --cwd . --kernel python3 --no-progress-bar --log-level WARNING $$nb results/notebooks/$$(basename $$nb) -p results results \
			2> results/notebooks/.papermill.log || { cat results/notebooks/.papermill.log >&2; exit 1; }; \
	done; rm -f results/notebooks/.papermill.log

notebooks-sync: $(DEV_INSTALLED) ## After editing a notebook (either file of a pair): sync the .py and .ipynb, strip outputs
	$(BIN)/jupytext --sync $(NOTEBOOKS)
	$(BIN)/nbstripout $(NOTEBOOKS:.py=.ipynb)

clean-runs: ## Delete the raw run folders (git-ignored) of every study; collected tables and figures stay
	rm -rf results/*/runs results/*/sweeps
