#!/usr/bin/env bash
# Airflow with newsagg's DAG on this machine, no Docker: api-server (the UI), scheduler and
# dag-processor on a SQLite metadata DB in a local AIRFLOW_HOME, LocalExecutor, no login
# (SimpleAuthManager, everyone admin: it listens on 127.0.0.1 only). Ctrl-C stops everything.
#
#   scripts/airflow-local.sh                 # your registry (NEWSAGG_SOURCES, default ./sources.yaml)
#   scripts/airflow-local.sh --sample-web    # serve the bundled sample news web and point at it
#
# Environment (all optional):
#   AIRFLOW_HOME        default ./airflow_home        AIRFLOW_PORT   default 8080
#   AIRFLOW_PARALLELISM default 4 (2-core friendly)   VENV           default ./.venv
#   NEWSAGG_STORE_URL   default sqlite:///./data/newsagg.db
#   NEWSAGG_SOURCES, NEWSAGG_ALLOW_PRIVATE_NETWORK: as for the CLI (see README)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BIN="$VENV/bin"
SAMPLE_WEB=0
for arg in "$@"; do
  case "$arg" in
    --sample-web) SAMPLE_WEB=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "airflow-local: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN/airflow" ] || { echo "airflow-local: $BIN/airflow not found; run: make setup" >&2; exit 1; }

PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/airflow_home}"
mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW_PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
# Workers reach the execution API on this port, not the default 8080.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT/"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
# The newsagg side reads the same configuration as the CLI; only the defaults differ here.
export NEWSAGG_STORE_URL="${NEWSAGG_STORE_URL:-sqlite:///$ROOT/data/newsagg.db}"
export NEWSAGG_SOURCES="${NEWSAGG_SOURCES:-$ROOT/sources.yaml}"
export PATH="$BIN:$PATH"

PIDS=()
stop() {
  trap - EXIT INT TERM
  if [ "${#PIDS[@]}" -gt 0 ]; then
    echo "airflow-local: stopping" >&2
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "${PIDS[@]}" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "${PIDS[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

if [ "$SAMPLE_WEB" = 1 ]; then
  REGISTRY="$AIRFLOW_HOME/sample-sources.yaml"
  rm -f "$REGISTRY"
  "$BIN/python" -c '
import sys, time
from pipeline.sampleweb.server import SampleWeb, sources_yaml
with SampleWeb() as web:
    with open(sys.argv[1] + ".tmp", "w", encoding="utf-8") as out:
        out.write(sources_yaml(web.base_url))
    import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    print(f"airflow-local: sample news web on {web.base_url}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
' "$REGISTRY" &
  PIDS+=($!)
  for _ in $(seq 1 50); do [ -f "$REGISTRY" ] && break; sleep 0.2; done
  [ -f "$REGISTRY" ] || { echo "airflow-local: the sample web did not start" >&2; exit 1; }
  export NEWSAGG_SOURCES="$REGISTRY"
  export NEWSAGG_ALLOW_PRIVATE_NETWORK=1
fi
[ -f "$NEWSAGG_SOURCES" ] || echo "airflow-local: warning: no source registry at $NEWSAGG_SOURCES" \
  "(set NEWSAGG_SOURCES, or use --sample-web); runs will fail in load_sources" >&2

"$BIN/airflow" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 \
  || { cat "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
# The DAG's feed and crawl tasks share this pool: at most this many fetch at once.
"$BIN/airflow" pools set newsagg_http "${NEWSAGG_HTTP_POOL_SLOTS:-4}" \
  "newsagg: concurrent feed and crawl tasks" >/dev/null

mkdir -p "$AIRFLOW_HOME/logs"
"$BIN/airflow" dag-processor >"$AIRFLOW_HOME/logs/dag-processor.out" 2>&1 &
PIDS+=($!)
"$BIN/airflow" scheduler >"$AIRFLOW_HOME/logs/scheduler.out" 2>&1 &
PIDS+=($!)
"$BIN/airflow" api-server --host 127.0.0.1 --port "$PORT" --workers 1 \
  >"$AIRFLOW_HOME/logs/api-server.out" 2>&1 &
PIDS+=($!)

echo "airflow-local: store $NEWSAGG_STORE_URL, registry $NEWSAGG_SOURCES" >&2
echo "airflow-local: starting; the UI will be at http://127.0.0.1:$PORT/ (logs in $AIRFLOW_HOME/logs)" >&2
for _ in $(seq 1 120); do
  if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
       "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null; then
    echo "airflow-local: ready: http://127.0.0.1:$PORT/dags/news_aggregation" >&2
    break
  fi
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "airflow-local: a component exited; see $AIRFLOW_HOME/logs/*.out" >&2; exit 1; }
  done
  sleep 1
done
# Exit (and stop the rest) as soon as any component dies.
wait -n "${PIDS[@]}"
echo "airflow-local: a component exited; see $AIRFLOW_HOME/logs/*.out" >&2
exit 1
