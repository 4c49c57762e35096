# Two commands for a newcomer: `make demo` (the main job through Airflow) and `make test`.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
HOME_DIR := $(CURDIR)/.corpus
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

# Small batches so the demo's tracks fan out over several mapped Airflow tasks.
DEMO_ENV := CORPUS_HOME=$(HOME_DIR) \
	CORPUS_PARTNERS=$(HOME_DIR)/demo/partners.yaml \
	CORPUS_BATCH_SIZE=6 \
	AIRFLOW_HOME=$(HOME_DIR)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False

.PHONY: demo test unit setup lint bench clean stop chromium airflow

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra dev --quiet
	touch $@

setup: $(VENV)/.synced  ## create .venv from uv.lock

demo: setup  ## generate the demo delivery, run corpus_refresh through Airflow, show the result
	@mkdir -p $(HOME_DIR)
	@$(DEMO_ENV) $(VENV)/bin/corpus demo-data
	@echo "== migrating Airflow's metadata database ($(HOME_DIR)/airflow)"
	@$(DEMO_ENV) $(VENV)/bin/airflow db migrate > $(HOME_DIR)/airflow-migrate.log 2>&1 \
		|| (tail -30 $(HOME_DIR)/airflow-migrate.log; exit 1)
	@echo "== airflow dags test corpus_refresh (log: $(HOME_DIR)/airflow-dags-test.log)"
	@$(DEMO_ENV) $(VENV)/bin/airflow dags test corpus_refresh $$(date -u +%F) \
		> $(HOME_DIR)/airflow-dags-test.log 2>&1 \
		|| (tail -40 $(HOME_DIR)/airflow-dags-test.log; exit 1)
	@grep -q "DagRun Finished.*state=success" $(HOME_DIR)/airflow-dags-test.log \
		|| (tail -40 $(HOME_DIR)/airflow-dags-test.log; echo "DAG run did not succeed"; exit 1)
	@$(DEMO_ENV) $(VENV)/bin/corpus show
	@echo "== corpus verify (every committed version, re-read from the store)"
	@$(DEMO_ENV) $(VENV)/bin/corpus verify
	@echo "== corpus audit (open the report in a browser)"
	@$(DEMO_ENV) $(VENV)/bin/corpus audit
	@echo "(run the corpus command as $(VENV)/bin/corpus from this folder; make stop ends the embedded store and the demo feed server)"

airflow: setup  ## the DAGs under a real scheduler: airflow standalone on the demo's settings
	@mkdir -p $(HOME_DIR)
	@$(DEMO_ENV) $(VENV)/bin/corpus demo-data > /dev/null
	$(DEMO_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True \
		$(VENV)/bin/airflow standalone

chromium:  ## Debian's headless Chromium, which renders the audit report in the tests
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the audit-report test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup chromium  ## run the whole test suite (starts SecantusDB, fake-gcs-server, Airflow itself)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

unit: setup  ## the fast tests: no database, object store, Airflow run or browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q tests/unit

bench: setup  ## descriptor stage vs bare Essentia MusicExtractor, same files, same run
	$(VENV)/bin/python bench/descriptors_bench.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stop:  ## stop the embedded MongoDB-wire server and the demo feed server the demo started
	@CORPUS_HOME=$(HOME_DIR) $(VENV)/bin/corpus services stop

clean: stop
	rm -rf $(HOME_DIR)
