"""Scrapy settings for newsagg's crawl. Every setting that matters is pinned here, with why.

Scrapy's library defaults are neither polite nor safe (no robots.txt, 8 requests at once per
host, no delay, any URL scheme, a telnet console, a remote-code HTTP server, 1 GiB bodies), so
nothing relevant is left to them. Values that newsagg configures come from the same layers as
everywhere else (defaults < newsagg.toml < NEWSAGG_* env; ``run_crawl`` passes the parent's
resolved settings through the environment).
"""

from pipeline.config import load_settings

_newsagg = load_settings()

BOT_NAME = "newsagg"  # names the project in logs and stats (default "scrapybot")
SPIDER_MODULES = ["spiders.news"]  # only the spiders, so `scrapy list` imports nothing else

# -- politeness --------------------------------------------------------------------------------
ROBOTSTXT_OBEY = True  # default False: Scrapy would ignore robots.txt
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"  # RFC 9309 semantics, wildcards
ROBOTSTXT_USER_AGENT = "newsagg"  # the product token robots.txt groups name, not the full UA
USER_AGENT = _newsagg.user_agent  # default says "Scrapy": site owners must see who we are
CONCURRENT_REQUESTS = 16  # across hosts; per-host concurrency is the limit that matters
CONCURRENT_REQUESTS_PER_DOMAIN = 1  # default 8: one request in flight per host
# default 100: Scrapy starts that many asyncio tasks per response to run its output through the
# item pipelines; ours is synchronous and a response yields one item, so 100 tasks were overhead
CONCURRENT_ITEMS = 4
DOWNLOAD_DELAY = _newsagg.host_delay  # default 0; a source's `delay` overrides it per crawl
DOWNLOAD_DELAY_JITTER = 0.0  # default ±50% (RANDOMIZE_DOWNLOAD_DELAY, deprecated in 2.19)
#                              would go below host_delay; the delay is a floor, not an average
AUTOTHROTTLE_ENABLED = True  # back off further when a host slows down (never below the delay)
AUTOTHROTTLE_START_DELAY = _newsagg.host_delay  # default 5 s would slow every first request
AUTOTHROTTLE_MAX_DELAY = 60.0  # a struggling host still gets a request a minute at most
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0  # one request's worth of load per host
NEWSAGG_ROBOTS_CRAWL_DELAY_CAP = _newsagg.robots_crawl_delay_cap  # Crawl-delay honoured up to this
RETRY_ENABLED = True  # transient 5xx and network errors get another chance in-run
RETRY_TIMES = 2  # three attempts per run; the frontier retries again next run
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]  # never 4xx: a 404 stays a 404
NEWSAGG_RETRY_AFTER_CAP = _newsagg.retry_after_cap  # longer Retry-After: host deferred to next run
NEWSAGG_CONDITIONAL_DISCOVERY = True  # robots.txt, sitemaps, section pages: If-None-Match
#                                      and If-Modified-Since from the store, 304s from it
COOKIES_ENABLED = False  # no sessions, no tracking state carried between articles

# -- safety --------------------------------------------------------------------------------------
NEWSAGG_ALLOW_PRIVATE_NETWORK = _newsagg.allow_private_network  # off: loopback/private refused
TWISTED_DNS_RESOLVER = "spiders.resolver.PublicOnlyResolver"  # vets the IP actually connected to
DNSCACHE_ENABLED = True  # one resolution per host per run: what was vetted is what is used
DNS_TIMEOUT = _newsagg.connect_timeout  # default 60 s
DOWNLOAD_TIMEOUT = _newsagg.total_timeout  # default 180 s; wall clock incl. body (slow loris)
DOWNLOAD_MAXSIZE = _newsagg.max_bytes  # default 1 GiB; also caps decompressed bodies
DOWNLOAD_WARNSIZE = _newsagg.max_bytes // 2  # default 32 MiB; warn well before the cap
DOWNLOAD_FAIL_ON_DATALOSS = True  # a truncated body is an error, not a short article
DOWNLOAD_VERIFY_CERTIFICATES = True  # default False: Scrapy accepts any TLS certificate
REDIRECT_ENABLED = True  # moved articles are common; each hop is vetted again (below)
REDIRECT_MAX_TIMES = _newsagg.max_redirects  # default 20; 5, as the HTTP module
URLLENGTH_LIMIT = 2048  # default 2083; the store's URL column is 2048 characters
DOWNLOAD_HANDLERS = {  # http and https only: no local files, no S3, no FTP, no data: URLs
    "file": None,
    "s3": None,
    "ftp": None,
    "data": None,
}
TELNETCONSOLE_ENABLED = False  # default on: a console on a local port that runs code
REMOTE_CONTROL_ENABLED = False  # default on in 2.19: an HTTP server that runs posted code
HTTPCACHE_ENABLED = False  # the store keeps raw pages; no second copy on disk
CLOSESPIDER_PAGECOUNT = _newsagg.crawl_page_limit  # per source crawl: runaway guard (requests
#                          already queued for the host, up to CONCURRENT_REQUESTS, still finish)
MEMUSAGE_ENABLED = True  # and a memory guard, checked every minute
MEMUSAGE_LIMIT_MB = 2048  # default 0 (none): stop a crawl that grows past 2 GiB

# -- machinery -----------------------------------------------------------------------------------
TWISTED_REACTOR_ENABLED = True  # the reactorless mode would swap in a different HTTP client
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"  # async middlewares
# REQUEST_FINGERPRINTER_IMPLEMENTATION is gone in 2.19 (only "2.7" was left), so pin the class:
REQUEST_FINGERPRINTER_CLASS = "scrapy.utils.request.RequestFingerprinter"  # the current one
LOG_LEVEL = "INFO"  # default DEBUG logs every request; run_crawl keeps warnings and a tail
FEEDS: dict[str, dict[str, str]] = {}  # items go to the store only, never to export files

DOWNLOADER_MIDDLEWARES = {  # spiders/middlewares.py: what Scrapy lacks
    # before robots.txt (100): a private host is refused before even its robots.txt is asked for
    "spiders.middlewares.PrivateAddressMiddleware": 40,
    # after robots.txt (100): sees the final robots.txt response, and requests once it is known
    "spiders.middlewares.RobotsFailureMiddleware": 110,
    "spiders.middlewares.HostGateMiddleware": 120,
    # Discovery documents (robots.txt, sitemaps, section pages) asked for conditionally, a 304
    # answered from the store. After robots.txt (100) and the host gate (120): a refused or
    # blocked request costs no store read; robots.txt's own request, which RobotsTxtMiddleware
    # downloads through this whole chain, passes here too, and RobotsFailureMiddleware (110)
    # sees the stand-in 200 of a 304. Before Retry (550), HttpCompression (590) and Redirect
    # (600), so on the way back it sees each hop's final answer: retried already, decoded
    # already (the decompressed-size cap applied), never a 3xx; a redirected request comes
    # back through it and gets the validators of its new URL, not the old one's.
    "spiders.middlewares.ConditionalDiscoveryMiddleware": 130,
    # Scrapy's retry, plus Retry-After
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "spiders.middlewares.RetryAfterMiddleware": 550,
}
EXTENSIONS = {  # robots.txt Crawl-delay, which Scrapy parses but never applies
    "spiders.extensions.CrawlDelay": 100,  # after AutoThrottle (0), so its floor wins
}
ITEM_PIPELINES = {  # the one way into the store: pipeline.ingest.ingest_page
    "spiders.pipelines.StorePipeline": 300,
}
