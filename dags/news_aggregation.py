"""The nightly newsagg run as an Airflow DAG: the CLI's stages, one task each, mapped per source.

The file stays cheap to parse (the dag-processor re-reads it every few minutes): it imports only
``airflow.sdk`` and ``pipeline.config``, and reads nothing but the schedule from the newsagg
configuration. Every task imports :mod:`pipeline.tasks` when it runs, and the store, the source
registry and the private-network switch come from that same configuration (``NEWSAGG_*`` or the
config file) on the worker, never from this file. Only the store may instead come from an Airflow
Connection ``newsagg_store``, when the configuration names none.

Failure handling: a newsagg error that a retry cannot fix (bad params, bad registry, a refused
URL) fails its task at once; anything else is retried with exponential backoff. A source that
stays down fails its own mapped task only: the rest is still cleaned, deduplicated and published,
and ``fail_if_any_failed`` then marks the run failed, so the next run's default ``since`` still
reaches back to the last fully successful run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, CronTriggerTimetable, Param, TriggerRule, dag, task

from pipeline.config import load_settings

DAG_ID = "news_aggregation"
HTTP_POOL = "newsagg_http"  # created by scripts/airflow-local.sh and the compose init service
STORE_CONNECTION = "newsagg_store"
# What downstream DAGs schedule on: ``schedule=[Asset("newsagg://stories")]``, this very
# definition (name and URI), so the two match.
STORIES = Asset("newsagg://stories")
SOURCE_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
BY_SOURCE = "{{ task.op_kwargs['name'] }}"  # mapped tasks are labelled by source in the UI

default_args: dict[str, Any] = {
    "owner": "newsagg",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


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


def _call(name: str, /, **kwargs: Any) -> Any:
    """Run ``pipeline.tasks.<name>``; a newsagg error no retry can fix fails the task for good."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline import tasks
    from pipeline.errors import NewsaggError

    try:
        return getattr(tasks, name)(store_fallback=_store_fallback(), **kwargs)
    except NewsaggError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


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
            description="Source names from the registry, one per line. Empty: every enabled source.",
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
        return _call("prepare_run", params=dict(context["params"]), previous_success=previous)

    # Mapping needs a task's return value, not one key of it: these two hand the lists over.
    @task(execution_timeout=timedelta(minutes=1))
    def feed_sources(names: list[str]) -> list[str]:
        """The rss sources to map ``pull_feed`` over (none on a dry run: all later tasks skip)."""
        return list(names)

    @task(execution_timeout=timedelta(minutes=1))
    def crawl_sources(names: list[str]) -> list[str]:
        """The sitemap and html sources to map ``crawl`` over."""
        return list(names)

    @task(pool=HTTP_POOL, execution_timeout=timedelta(minutes=30), map_index_template=BY_SOURCE)
    def pull_feed(name: str, since: str | None) -> dict[str, Any]:
        return _call("pull_feed", name=name, since=since)

    @task(pool=HTTP_POOL, execution_timeout=timedelta(hours=1), map_index_template=BY_SOURCE)
    def crawl(name: str, since: str | None) -> dict[str, Any]:
        return _call("crawl_source", name=name, since=since)

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=10))
    def plan_clean() -> list[dict[str, Any]]:
        """Runs when every source is done, failed or not: what did arrive gets cleaned."""
        return _call("plan_clean", names=_pull_plan("sources"))

    @task(execution_timeout=timedelta(minutes=30), max_active_tis_per_dagrun=4)
    def clean(batch: dict[str, Any]) -> dict[str, Any]:
        return _call("clean_batch", batch=batch, names=_pull_plan("sources"))

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(hours=1))
    def dedup() -> dict[str, Any]:
        return _call("dedup", recluster=bool(_pull_plan("recluster")))

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
            for key, task_id in (("feeds", "pull_feed"), ("crawls", "crawl"), ("cleaned", "clean"))
        }
        results["dedup"] = deduped
        summary = _call("publish", results=results)
        context["outlet_events"][STORIES].extra = {
            **summary["run"],
            "stories_total": summary["store"]["stories"],
        }
        return summary

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0, execution_timeout=timedelta(minutes=1))
    def fail_if_any_failed() -> None:
        """Only runs when a task failed: marks the run failed although the rest was published."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            "a task of this run failed (see the failed tasks in the "
            "grid); what the other tasks stored and published stays"
        )

    plan = load_sources()
    feeds = feed_sources(plan["rss"])
    crawls = crawl_sources(plan["crawl"])
    pulled = pull_feed.partial(since=plan["since"]).expand(name=feeds)
    crawled = crawl.partial(since=plan["since"]).expand(name=crawls)
    batches = plan_clean()
    [pulled, crawled] >> batches
    cleaned = clean.expand(batch=batches)
    deduped = dedup()
    cleaned >> deduped
    published = publish(deduped)
    [plan, feeds, crawls, pulled, crawled, batches, cleaned, deduped, published] >> fail_if_any_failed()


news_aggregation()
