# Airflow targets, included by the Makefile (`-include mk/*.mk`). See "Running on Airflow" in the README.
.PHONY: airflow airflow-demo airflow-celery airflow-celery-demo airflow-test bench-airflow-scale

# The Airflow UI on http://127.0.0.1:$(AIRFLOW_PORT)/ with your registry and a local store.
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh

# The same, against the bundled sample news web: trigger news_aggregation and watch it work.
airflow-demo: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh --sample-web

# The production shape without Docker: CeleryExecutor, Redis on 127.0.0.1:6379 as broker,
# PostgreSQL on 127.0.0.1:5432 as metadata database and store, $(AIRFLOW_WORKERS) Celery workers.
AIRFLOW_WORKERS ?= 2
airflow-celery: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh --executor celery --workers $(AIRFLOW_WORKERS)

airflow-celery-demo: $(STAMP)
	VENV=$(VENV) AIRFLOW_PORT=$(AIRFLOW_PORT) scripts/airflow-local.sh --executor celery --workers $(AIRFLOW_WORKERS) --sample-web

airflow-test: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_dag.py tests/test_compose.py tests/test_airflow_ui.py tests/test_airflow_celery.py

# Thousands of feeds on hundreds of loopback hosts through the Celery DAG and through `newsagg run`.
bench-airflow-scale: $(STAMP)
	$(BIN)/python benchmarks/airflow_scale.py
