"""Extraction: from a stored page's bytes to an article's body, title, authors, date and language."""
