# satudata: set-up is two commands, `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
MANIFEST := dbt_project/target/manifest.json
DBT_FILES := dbt_project/dbt_project.yml dbt_project/profiles.yml \
	$(shell find dbt_project/models dbt_project/macros dbt_project/seeds dbt_project/tests -type f)
export SATUDATA_HOME ?= $(CURDIR)/data
export DAGSTER_HOME  ?= $(SATUDATA_HOME)/dagster
DEV_PORT ?= 3000
PORTAL_PORT ?= 8080

.PHONY: install run dev test lint format clean docs bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the dbt manifest the Dagster definitions are built from, parsed again when the project changes
$(MANIFEST): $(STAMP) $(DBT_FILES)
	$(BIN)/satudata prepare

install: $(STAMP) $(MANIFEST)

## run: install, write demo submissions if landing/ is empty, run the pipeline once
run: install
	$(BIN)/satudata demo-data --if-empty
	$(BIN)/satudata run

## docs: the dbt docs site for analysts (static HTML under $(SATUDATA_HOME)/dbt/docs)
docs: install
	mkdir -p $(SATUDATA_HOME)/warehouse
	cd dbt_project && ../$(BIN)/dbt docs generate --static --profiles-dir . \
		--target-path $(SATUDATA_HOME)/dbt/docs --log-path $(SATUDATA_HOME)/dbt/logs
	@echo "Open $(SATUDATA_HOME)/dbt/docs/static_index.html"

## dev: the Dagster UI (http://127.0.0.1:3000, DEV_PORT=...) and the portal (http://127.0.0.1:8080,
## PORTAL_PORT=...) side by side; Ctrl-C stops both
dev: install
	$(BIN)/satudata prepare
	$(BIN)/satudata serve --port $(PORTAL_PORT) & portal=$$!; \
	trap 'kill $$portal 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

## bench: the nightly run at province scale against the DuckDB floor (slow: minutes)
bench: install
	$(BIN)/python benchmarks/nightly.py

## test: install and run the whole suite
test: install
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=25

lint: install
	$(BIN)/ruff check orchestration tests benchmarks
	$(BIN)/ruff format --check orchestration tests benchmarks

format: install
	$(BIN)/ruff format orchestration tests benchmarks
	$(BIN)/ruff check --fix orchestration tests benchmarks

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
