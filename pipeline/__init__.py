"""newsagg: multi-source news aggregation.

Every stage lives here as a plain function so the CLI, the Airflow DAG and the Scrapy item
pipelines share one code path. Nothing in this package imports Airflow or Scrapy.
"""

__version__ = "0.1.0"
