"""The nightly newsagg run as an Airflow DAG: the CLI's stages, one task each, the fetch mapped
over shards of the registry (every source of one host in one shard: see ``pipeline.shards``).

The file stays cheap to parse (the dag-processor re-reads it every few minutes): it imports only
``airflow.sdk`` and ``pipeline.config``, and reads nothing but the schedule and the registry's
source names (a text scan, for the trigger form) from the newsagg configuration. Every task
imports :mod:`pipeline.tasks` when it runs, and the store, the source registry and the
private-network switch come from that same configuration (``NEWSAGG_*`` or the config file) on
the worker, never from this file. Only the store may instead come from an Airflow
Connection ``newsagg_store``, when the configuration names none.

Failure handling: a newsagg error that a retry cannot fix (bad params, bad registry) fails its
task at once; anything else is retried with exponential backoff. A source that is down, refused
or malformed is reported in its shard's summary, never fails the shard (a retry would refetch
its healthy neighbours): the rest is still cleaned, deduplicated and published, and
``fail_if_any_failed`` then marks the run failed, naming the sources, so the next run's default
``since`` still reaches back to the last fully successful run. On a good run it succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronTriggerTimetable, Param, TriggerRule, dag, task

from pipeline.config import load_settings
from pipeline.models import SOURCE_NAME_PATTERN

DAG_ID = "news_aggregation"
HTTP_POOL = "newsagg_http"  # created by scripts/airflow-local.sh and the compose init service
STORE_CONNECTION = "newsagg_store"
# What downstream DAGs schedule on: ``schedule=[Asset("newsagg://stories")]``, this very
# definition (name and URI), so the two match.
STORIES = Asset("newsagg://stories")
SOURCE_NAME = SOURCE_NAME_PATTERN
BY_SHARD = "{{ task.op_kwargs['shard']['label'] }}"  # "shard 3: wire, ledger +4" in the UI
# The trigger form offers the registry's names; past this many, type them in the JSON conf.
MAX_SUGGESTED = 1000
_REGISTRY_NAME = re.compile(
    r"""(?:^|[\s{,])name:\s*['"]?([a-z0-9][a-z0-9_.-]{0,63})['"]?\s*(?:[,}#]|$)""", re.M
)

default_args: dict[str, Any] = {
    "owner": "newsagg",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


def registry_names() -> list[str]:
    """The registry's source names for the trigger form, read as text (no YAML parser, no
    validation: the run validates): unreadable or absent, the form takes free names."""
    try:
        path = load_settings().sources
        with open(path, encoding="utf-8") as handle:
            text = handle.read(8 * 1024 * 1024)
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    return sorted(dict.fromkeys(_REGISTRY_NAME.findall(text)))[:MAX_SUGGESTED]


def _store_fallback() -> str | None:
    """The ``newsagg_store`` Connection's URI, looked up only when the configuration names no
    store (and only at run time: a lookup talks to the API server)."""
    if load_settings().store_url:
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(STORE_CONNECTION)
    except AirflowNotFoundException:
        return None
    url = (conn.extra_dejson or {}).get("url") if conn.extra else None
    return str(url or conn.get_uri())


def _call(func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run a ``pipeline.tasks`` function (imported by the task when it runs, never at parse
    time); a newsagg error no retry can fix fails the task for good."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.errors import NewsaggError

    try:
        return func(store_fallback=_store_fallback(), **kwargs)
    except NewsaggError as exc:
        if exc.retryable:
            raise
        failure = AirflowFailException(f"{type(exc).__name__}: {exc}")
    raise failure from None  # the message says it all: no traceback through the pipeline


def _pull_plan(key: str) -> Any:
    """A value of the validated plan, or a skip when validation did not succeed (the tasks that
    wait for all sources use trigger rule all_done, so they also run after a failed validation
    and on a dry run, where no source task ran)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    context = get_current_context()
    ti = context["ti"]
    dry_run = ti.xcom_pull(task_ids="load_sources", key="dry_run")
    if dry_run is None:
        raise AirflowSkipException("load_sources did not succeed: nothing to do")
    if dry_run:
        raise AirflowSkipException("dry run: nothing to do")
    return ti.xcom_pull(task_ids="load_sources", key=key)


SUGGESTED = registry_names()


@dag(
    dag_id=DAG_ID,
    description="Nightly news aggregation: feeds and crawls to cleaned articles to stories",
    # No start_date: the first scheduled run waits for the next tick instead of fetching the
    # moment the DAG is deployed (with a start_date and no catchup, the latest tick runs at once).
    schedule=CronTriggerTimetable(load_settings().schedule, timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    dagrun_timeout=timedelta(hours=6),
    tags=["newsagg"],
    doc_md=__doc__,
    params={
        "sources": Param(
            [],
            type=["array", "null"],
            items={"type": "string", "pattern": SOURCE_NAME},
            uniqueItems=True,
            title="Sources",
            description="Sources to run (only their shards run). Empty: every enabled source.",
            **({"examples": SUGGESTED} if SUGGESTED else {}),
        ),
        "since": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Since",
            description="Only take articles published on or after this ISO date (YYYY-MM-DD). "
            "Empty: since the last successful run (everything on the first run).",
        ),
        "recluster": Param(
            False,
            type="boolean",
            title="Recluster",
            description="Re-cluster the whole store instead of only what changed (story ids are "
            "kept where possible).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Validate the params, the registry and the configuration, then stop: "
            "nothing is fetched or written.",
        ),
    },
)
def news_aggregation() -> None:
    @task(multiple_outputs=True, execution_timeout=timedelta(minutes=5))
    def load_sources() -> dict[str, Any]:
        """Validate params and registry (fails fast, no retry) and fix the run's window."""
        from airflow.sdk import get_current_context

        context = get_current_context()
        # The previous successful run's interval end (its logical date under this cron
        # timetable): a rerun of one logical date sees the same window. Lazy: an API call.
        lazy = context.get("prev_data_interval_end_success")
        previous = datetime.fromisoformat(lazy.isoformat()) if isinstance(lazy, datetime) else None
        from pipeline import tasks

        return _call(tasks.prepare_run, params=dict(context["params"]), previous_success=previous)

    # Mapping needs a task's return value, not one key of it: this hands the list over.
    @task(execution_timeout=timedelta(minutes=1))
    def shards(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The shards to map ``fetch_shard`` over (none on a dry run: all later tasks skip)."""
        return list(planned)

    @task(pool=HTTP_POOL, execution_timeout=timedelta(hours=2), map_index_template=BY_SHARD)
    def fetch_shard(shard: dict[str, Any], since: str | None) -> dict[str, Any]:
        """One shard's feeds and crawls; its log and result list every source's counts."""
        from pipeline import tasks

        return _call(tasks.fetch_shard, shard=shard, since=since)

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=10))
    def plan_clean() -> list[dict[str, Any]]:
        """Runs when every source is done, failed or not: what did arrive gets cleaned."""
        from pipeline import tasks

        return _call(tasks.plan_clean, names=_pull_plan("sources"))

    @task(execution_timeout=timedelta(minutes=30), max_active_tis_per_dagrun=4)
    def clean(batch: dict[str, Any]) -> dict[str, Any]:
        from pipeline import tasks

        return _call(tasks.clean_batch, batch=batch, names=_pull_plan("sources"))

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(hours=1))
    def dedup() -> dict[str, Any]:
        from pipeline import tasks

        return _call(tasks.dedup, recluster=bool(_pull_plan("recluster")))

    @task(outlets=[STORIES], execution_timeout=timedelta(minutes=5))
    def publish(deduped: dict[str, Any]) -> dict[str, Any]:
        """Counts only; the asset event tells downstream DAGs the stories changed."""
        from airflow.sdk import get_current_context

        context = get_current_context()
        ti = context["ti"]
        # Pulled here, not passed in: as inputs, a failed source would block publishing.
        # A list of task ids returns every map index's value as a list.
        results: dict[str, Any] = {
            key: [v for v in ti.xcom_pull(task_ids=[task_id]) or [] if isinstance(v, dict)]
            for key, task_id in (("shards", "fetch_shard"), ("cleaned", "clean"))
        }
        results["dedup"] = deduped
        run = context["dag_run"]
        started = run.start_date.isoformat() if run.start_date else None
        from pipeline import tasks

        summary = _call(tasks.publish, results=results, started=started)
        context["outlet_events"][STORIES].extra = {
            **summary["run"],
            "stories_total": summary["store"]["stories"],
        }
        return summary

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0, execution_timeout=timedelta(minutes=1))
    def fail_if_any_failed() -> str:
        """Green when every task and every source did its work; failed (after the rest was
        published) when a task or a source failed, naming them."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        context = get_current_context()
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed_states = ("failed", "upstream_failed")
        bad = sorted(key for key, state in states.items() if state in failed_states and key != ti.task_id)
        shards = [v for v in ti.xcom_pull(task_ids=["fetch_shard"]) or [] if isinstance(v, dict)]
        from pipeline.tasks import failed_sources

        sources = failed_sources({"shards": shards})
        if bad or sources:
            parts = [f"task(s) {', '.join(bad)} failed"] if bad else []
            if sources:
                listed = "; ".join(f"{n}: {why}" for n, why in list(sources.items())[:20])
                more = f" (and {len(sources) - 20} more)" if len(sources) > 20 else ""
                parts.append(f"{len(sources)} source(s) failed: {listed}{more}")
            raise AirflowFailException(
                " and ".join(parts) + ". What the rest fetched, cleaned and published stays."
            )
        return f"all {len(states) - 1} other tasks and every source succeeded"

    plan = load_sources()
    planned = shards(plan["shards"])
    fetched = fetch_shard.partial(since=plan["since"]).expand(shard=planned)
    batches = plan_clean()
    fetched >> batches
    cleaned = clean.expand(batch=batches)
    deduped = dedup()
    cleaned >> deduped
    published = publish(deduped)
    [plan, planned, fetched, batches, cleaned, deduped, published] >> fail_if_any_failed()


news_aggregation()
