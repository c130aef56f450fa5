"""newsagg: multi-source news aggregation.

Every stage lives here as a plain function so the CLI, the Airflow DAG and the Scrapy item
pipelines share one code path. Nothing in this package imports Airflow or Scrapy.

Module map (a page's path through the stages: ``docs/architecture.md``)::

    models  config  errors  sources  context   the typed things, settings, registry, a run's handles
    ingest  crawl  clean  dedup                 the stages: discover+fetch, Scrapy launcher, clean, dedup
    run  tasks  cli  progress                   sequencing for the CLI and for Airflow tasks; the CLI
    net/      client (HTTP, the only module that does it) and the SSRF guard
    parse/    feeds, urls: what discovery fetches, parsed without I/O
    extract/  a stored page's bytes -> body, title, authors, date, language
    cluster/  near-duplicate copies, event clustering into stories, figures
    store/    tables, migrations, one repository per table group behind the Store facade:
              the only code that builds SQL
    serve/    read API, story page, exports, API tokens
    sampleweb/  the bundled fictional news web the demo and tests crawl, on the one loopback
                server core the tests and benchmarks share
"""

__version__ = "0.1.0"
