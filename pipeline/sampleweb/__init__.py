"""The bundled sample news web: eight fictional outlets, in four languages, served from a local port.

Used by ``newsagg demo`` and by the end-to-end tests::

    from pipeline.sampleweb import SampleWeb, sources_yaml

    with SampleWeb() as web:
        registry_text = sources_yaml(web.base_url)
        ...
        web.set_edition(2)  # the wire's night-strike article is updated at the same URL

``load_manifest()`` returns the ground truth: every article with its outlet, URL path, event,
title, publication time, language, the original it copies (if any) and the figures it reports.

``loopback`` is the one local HTTP server the sample web runs on, and with it the crawl sites of
``sites`` (tests and the crawl benchmark), the tests' fault server and the benchmark's news web:
it ships here because the sample web ships here, and the benchmarks import the installed package.
"""

from pipeline.sampleweb.loopback import RequestRecord
from pipeline.sampleweb.server import (
    FAULT_500_PATH,
    FAULT_GARBAGE_FEED_PATH,
    FAULT_GOOD_ARTICLE_PATH,
    FAULT_NOT_HTML_PATH,
    FAULTS_FEED_PATH,
    PRIVATE_PAGE_PATH,
    SITE_DIR,
    SampleWeb,
    load_manifest,
    sources_yaml,
)

__all__ = [
    "FAULTS_FEED_PATH",
    "FAULT_500_PATH",
    "FAULT_GARBAGE_FEED_PATH",
    "FAULT_GOOD_ARTICLE_PATH",
    "FAULT_NOT_HTML_PATH",
    "PRIVATE_PAGE_PATH",
    "SITE_DIR",
    "RequestRecord",
    "SampleWeb",
    "load_manifest",
    "sources_yaml",
]
