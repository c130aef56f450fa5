"""Serving downstream consumers: the read API, the story page, exports and API tokens."""
