# Airflow targets, included by the Makefile (`-include mk/*.mk`). See "Running on Airflow" in the README.
.PHONY: airflow airflow-demo airflow-test

# The Airflow UI on http://127.0.0.1:$(AIRFLOW_PORT)/ with your registry and a local store.
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh

# The same, against the bundled sample news web: trigger news_aggregation and watch it work.
airflow-demo: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh --sample-web

airflow-test: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_dag.py tests/test_compose.py tests/test_airflow_ui.py
