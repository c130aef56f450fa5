"""newsagg's Scrapy crawl of sources without usable feeds (sitemaps, section pages).

Thin by design: spiders find article URLs and hand responses to ``pipeline`` functions. The
crawl runs in its own process (``python -m spiders.run``, started by ``pipeline.crawl``).
"""
