"""Extraction: fetched HTML bytes in, plain article text and metadata out.

``page`` runs one page through ``charset`` (bytes to text), ``metadata`` (what the publisher
states: ``jsonld``, ``titles``, ``dates``), ``body`` (trafilatura, escalated when needed) and
``language`` (text that is not language is dropped); ``pool`` runs many pages on every core.
"""

from pipeline.extract.charset import decode_html
from pipeline.extract.dates import parse_date
from pipeline.extract.page import extract
from pipeline.extract.pool import extract_many
from pipeline.extract.result import Extracted, ExtractStats
from pipeline.extract.text import sanitize_text

__all__ = [
    "ExtractStats",
    "Extracted",
    "decode_html",
    "extract",
    "extract_many",
    "parse_date",
    "sanitize_text",
]
