# satudata: set-up is two commands, `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export SATUDATA_HOME ?= $(CURDIR)/data
export DAGSTER_HOME  ?= $(SATUDATA_HOME)/dagster

.PHONY: install run dev test lint format clean docs bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: install, write demo submissions if landing/ is empty, run the pipeline once
run: install
	$(BIN)/satudata demo-data --if-empty
	$(BIN)/satudata run

## docs: the dbt docs site for analysts (static HTML under $(SATUDATA_HOME)/dbt/docs)
docs: install
	$(BIN)/satudata prepare
	mkdir -p $(SATUDATA_HOME)/warehouse
	cd dbt_project && ../$(BIN)/dbt docs generate --static --profiles-dir . \
		--target-path $(SATUDATA_HOME)/dbt/docs --log-path $(SATUDATA_HOME)/dbt/logs
	@echo "Open $(SATUDATA_HOME)/dbt/docs/static_index.html"

## dev: the Dagster UI on this code location (http://127.0.0.1:3000)
dev: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/satudata prepare
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## bench: the nightly run at province scale against the DuckDB floor (slow: minutes)
bench: install
	$(BIN)/python benchmarks/nightly.py

## test: install and run the whole suite
test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff check orchestration tests benchmarks
	$(BIN)/ruff format --check orchestration tests benchmarks

format: install
	$(BIN)/ruff format orchestration tests benchmarks
	$(BIN)/ruff check --fix orchestration tests benchmarks

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
