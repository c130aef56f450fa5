#!/usr/bin/env bash
# Airflow with newsagg's DAG on this machine, no Docker: api-server (the UI), scheduler and
# dag-processor, no login (SimpleAuthManager, everyone admin: it listens on 127.0.0.1 only).
# Ctrl-C or SIGTERM stops the whole process tree, task processes included.
#
#   scripts/airflow-local.sh                      # LocalExecutor, SQLite metadata DB, your registry
#   scripts/airflow-local.sh --sample-web         # serve the bundled sample news web and point at it
#   scripts/airflow-local.sh --executor celery --workers 2
#       CeleryExecutor as in docker-compose.yml: Redis broker, PostgreSQL metadata DB and store,
#       N Celery workers, each with its own worker name (worker1@host, ...) on the tasks it runs
#
# Environment (all optional):
#   AIRFLOW_HOME        default ./airflow_home        AIRFLOW_PORT   default 8080
#   AIRFLOW_PARALLELISM default 4 (2-core friendly)   VENV           default ./.venv
#   AIRFLOW__DATABASE__SQL_ALCHEMY_CONN  default sqlite in AIRFLOW_HOME; with celery
#                       postgresql+psycopg://postgres@127.0.0.1:5432/airflow_local (created if absent)
#   AIRFLOW__CELERY__BROKER_URL  default redis://127.0.0.1:6379/0
#   AIRFLOW_WORKER_CONCURRENCY   default 2 (task slots per Celery worker)
#   AIRFLOW_QUEUE       default "default" (the Celery queue; a unique one keeps stacks sharing a Redis apart)
#   NEWSAGG_STORE_URL   default sqlite:///./data/newsagg.db; with celery
#                       postgresql://postgres@127.0.0.1:5432/newsagg (created if absent)
#   NEWSAGG_SOURCES, NEWSAGG_ALLOW_PRIVATE_NETWORK, NEWSAGG_SHARD_COUNT: as for the CLI (see README)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BIN="$VENV/bin"
SAMPLE_WEB=0
EXECUTOR=local
WORKERS=2
while [ "$#" -gt 0 ]; do
  case "$1" in
    --sample-web) SAMPLE_WEB=1 ;;
    --executor) shift; EXECUTOR="${1:-}" ;;
    --executor=*) EXECUTOR="${1#*=}" ;;
    --workers) shift; WORKERS="${1:-}" ;;
    --workers=*) WORKERS="${1#*=}" ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "airflow-local: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$EXECUTOR" in
  local|celery) ;;
  *) echo "airflow-local: --executor must be local or celery, not '$EXECUTOR'" >&2; exit 2 ;;
esac
case "$WORKERS" in
  ''|*[!0-9]*|0) echo "airflow-local: --workers must be a positive number, not '$WORKERS'" >&2; exit 2 ;;
esac
[ -x "$BIN/airflow" ] || { echo "airflow-local: $BIN/airflow not found; run: make setup" >&2; exit 1; }

PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/airflow_home}"
mkdir -p "$AIRFLOW_HOME/logs"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW_PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
# Workers reach the execution API on this port, not the default 8080.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
export PATH="$BIN:$PATH"
# Every process this script starts inherits this mark: on exit, whatever still carries it is
# ours, even a task process that was re-parented to PID 1 when its parent died.
export NEWSAGG_AIRFLOW_LOCAL_RUN="$$-$RANDOM$RANDOM"

if [ "$EXECUTOR" = celery ]; then
  export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg://postgres@127.0.0.1:5432/airflow_local}"
  export NEWSAGG_STORE_URL="${NEWSAGG_STORE_URL:-postgresql://postgres@127.0.0.1:5432/newsagg}"
  export AIRFLOW__CELERY__BROKER_URL="${AIRFLOW__CELERY__BROKER_URL:-redis://127.0.0.1:6379/0}"
  export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW_WORKER_CONCURRENCY:-${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}}"
  export AIRFLOW__OPERATORS__DEFAULT_QUEUE="${AIRFLOW_QUEUE:-${AIRFLOW__OPERATORS__DEFAULT_QUEUE:-default}}"
  # Each worker records its own name (NEWSAGG_WORKER_NAME) as the hostname of its tasks.
  export AIRFLOW__CORE__HOSTNAME_CALLABLE=pipeline.config.worker_hostname
  # Parallelism comes from mapped shards and clean batches spread over the workers (as in
  # docker-compose.yml): one extraction process per task keeps the CPUs from oversubscription.
  export NEWSAGG_EXTRACT_WORKERS="${NEWSAGG_EXTRACT_WORKERS:-1}"
else
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
  export NEWSAGG_STORE_URL="${NEWSAGG_STORE_URL:-sqlite:///$ROOT/data/newsagg.db}"
fi
# psycopg 3 is the PostgreSQL driver installed (not psycopg2, not asyncpg): name it, sync and async.
case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
  postgresql://*|postgres://*)
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN#*://}" ;;
esac
case "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in
  postgresql+psycopg://*)
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC:-postgresql+psycopg_async://${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN#*://}}"
    export AIRFLOW__CELERY__RESULT_BACKEND="${AIRFLOW__CELERY__RESULT_BACKEND:-db+$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}" ;;
esac
if [ "$EXECUTOR" = celery ] && [[ "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" == sqlite* ]]; then
  echo "airflow-local: CeleryExecutor needs a PostgreSQL metadata database, not SQLite" >&2; exit 2
fi
# The newsagg side reads the same configuration as the CLI; only the defaults differ here.
export NEWSAGG_SOURCES="${NEWSAGG_SOURCES:-$ROOT/sources.yaml}"

PIDS=()
# The pids of the given processes and all their descendants.
tree() {
  local all="$*" frontier="$*" next
  while [ -n "$frontier" ]; do
    next=$(ps -eo pid=,ppid= | awk -v parents=" $frontier " 'index(parents, " " $2 " ") { print $1 }')
    frontier=$(echo $next)
    all="$all $frontier"
  done
  echo "$all"
}
# Every process in the components' sessions (task processes get their own process group, not
# their own session), wherever it was re-parented to.
sessions() {
  ps -eo pid=,sid= | awk -v leaders=" ${PIDS[*]} " 'index(leaders, " " $2 " ") { print $1 }'
}
# Every process still carrying this run's mark (setproctitle may wipe it: a second net).
marked() {
  local file pid
  for file in /proc/[0-9]*/environ; do
    pid="${file#/proc/}"; pid="${pid%/environ}"
    [ "$pid" = "$$" ] && continue
    grep -qzx "NEWSAGG_AIRFLOW_LOCAL_RUN=$NEWSAGG_AIRFLOW_LOCAL_RUN" "$file" 2>/dev/null && echo "$pid"
  done
  return 0
}
stop() {
  trap - EXIT INT TERM
  [ "${#PIDS[@]}" -gt 0 ] || return 0
  echo "airflow-local: stopping" >&2
  local victims
  victims="$(tree "${PIDS[@]}") $(sessions) $(marked)"
  # Each component leads its own process group (setsid): signal the groups and every pid.
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  kill -TERM $victims 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 $victims 2>/dev/null || break
    sleep 0.5
  done
  # Whatever did not stop in 20 s, and whatever started meanwhile, is killed.
  victims="$victims $(tree $victims) $(sessions) $(marked)"
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  kill -KILL $victims 2>/dev/null || true
  echo "airflow-local: stopped" >&2
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start a component in its own session (so Ctrl-C in this terminal reaches only this script,
# which then stops the components in order) and remember it.
start() {
  local log="$1"; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  PIDS+=($!)
}

# A database on the local PostgreSQL, created when it does not exist yet.
ensure_database() {
  "$BIN/python" - "$1" <<'EOF'
import sys
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1))
if url.get_backend_name() == "postgresql" and url.database:
    admin = create_engine(url.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}).first():
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
            print(f"airflow-local: created database {url.database}", file=sys.stderr)
    admin.dispose()
EOF
}

if [ "$SAMPLE_WEB" = 1 ]; then
  REGISTRY="$AIRFLOW_HOME/sample-sources.yaml"
  rm -f "$REGISTRY"
  start "$AIRFLOW_HOME/logs/sample-web.out" "$BIN/python" -c '
import sys, time
from pipeline.sampleweb.server import SampleWeb, sources_yaml
with SampleWeb() as web:
    with open(sys.argv[1] + ".tmp", "w", encoding="utf-8") as out:
        out.write(sources_yaml(web.base_url))
    import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    print(f"airflow-local: sample news web on {web.base_url}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
' "$REGISTRY"
  for _ in $(seq 1 50); do [ -f "$REGISTRY" ] && break; sleep 0.2; done
  [ -f "$REGISTRY" ] || { echo "airflow-local: the sample web did not start" >&2; exit 1; }
  export NEWSAGG_SOURCES="$REGISTRY"
  export NEWSAGG_ALLOW_PRIVATE_NETWORK=1
fi
[ -f "$NEWSAGG_SOURCES" ] || echo "airflow-local: warning: no source registry at $NEWSAGG_SOURCES" \
  "(set NEWSAGG_SOURCES, or use --sample-web); runs will fail in load_sources" >&2

if [ "$EXECUTOR" = celery ]; then
  ensure_database "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
  case "$NEWSAGG_STORE_URL" in postgres*) ensure_database "$NEWSAGG_STORE_URL" ;; esac
fi
"$BIN/airflow" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 \
  || { cat "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
# The DAG's fetch tasks share this pool: at most this many shards fetch at once.
"$BIN/airflow" pools set newsagg_http "${NEWSAGG_HTTP_POOL_SLOTS:-4}" \
  "newsagg: concurrent fetch tasks" >/dev/null

start "$AIRFLOW_HOME/logs/dag-processor.out" "$BIN/airflow" dag-processor
start "$AIRFLOW_HOME/logs/scheduler.out" "$BIN/airflow" scheduler
start "$AIRFLOW_HOME/logs/api-server.out" "$BIN/airflow" api-server --host 127.0.0.1 --port "$PORT" --workers 1
WORKER_NAMES=()
if [ "$EXECUTOR" = celery ]; then
  host="$(hostname)"
  for n in $(seq 1 "$WORKERS"); do
    name="worker$n@$host"
    WORKER_NAMES+=("$name")
    # Two workers on one machine cannot both serve logs on port 8793: the API server reads
    # the task logs from the shared AIRFLOW_HOME/logs instead.
    export NEWSAGG_WORKER_NAME="$name"
    start "$AIRFLOW_HOME/logs/worker$n.out" \
      "$BIN/airflow" celery worker --celery-hostname "$name" \
      --queues "$AIRFLOW__OPERATORS__DEFAULT_QUEUE" --concurrency "$AIRFLOW__CELERY__WORKER_CONCURRENCY" \
      --skip-serve-logs --without-gossip --without-mingle
    echo "${PIDS[-1]}" >"$AIRFLOW_HOME/worker$n.pid"
    unset NEWSAGG_WORKER_NAME
  done
fi

echo "airflow-local: $AIRFLOW__CORE__EXECUTOR, store $NEWSAGG_STORE_URL, registry $NEWSAGG_SOURCES" >&2
echo "airflow-local: starting; logs in $AIRFLOW_HOME/logs" >&2
ready=0
for _ in $(seq 1 180); do
  if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
       "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null; then
    ready=1
    for n in $(seq 1 "${#WORKER_NAMES[@]}"); do
      grep -q "ready\." "$AIRFLOW_HOME/logs/worker$n.out" 2>/dev/null || ready=0
    done
    [ "$ready" = 1 ] && break
  fi
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "airflow-local: a component exited; see $AIRFLOW_HOME/logs/*.out" >&2; exit 1; }
  done
  sleep 1
done
[ "$ready" = 1 ] || { echo "airflow-local: not ready after 180 s; see $AIRFLOW_HOME/logs/*.out" >&2; exit 1; }
[ "${#WORKER_NAMES[@]}" -eq 0 ] || echo "airflow-local: Celery workers ${WORKER_NAMES[*]} on queue $AIRFLOW__OPERATORS__DEFAULT_QUEUE" >&2
echo "airflow-local: ready: http://127.0.0.1:$PORT/dags/news_aggregation" >&2
# Exit (and stop the rest) as soon as any component dies.
wait -n "${PIDS[@]}"
echo "airflow-local: a component exited; see $AIRFLOW_HOME/logs/*.out" >&2
exit 1
