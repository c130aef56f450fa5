# The official Airflow image plus newsagg (the pipeline package, the spiders and the DAG).
# Built by docker-compose.yml for every Airflow service; see docs/airflow.md.
FROM apache/airflow:3.3.2-python3.11

# lxml, psycopg[binary], numpy and scikit-learn all ship manylinux wheels: no compiler needed.
USER airflow
WORKDIR /opt/newsagg
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 pipeline ./pipeline
COPY --chown=airflow:0 spiders ./spiders
# Pinning apache-airflow to the image's own version keeps pip from up- or downgrading it while
# it resolves newsagg's pinned dependencies.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" ".[airflow]" \
 && newsagg --help >/dev/null
COPY --chown=airflow:0 dags /opt/airflow/dags

WORKDIR /opt/airflow
