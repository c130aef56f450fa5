"""Parsing what discovery fetches (feeds, sitemaps) and the URL rules every stage shares; no I/O."""
