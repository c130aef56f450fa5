"""Small helpers every repository of the store uses."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size``: one IN list per slice keeps every statement small."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def json_object(value: str | None) -> dict[str, Any] | None:
    """A stored JSON object, or None when there is none (or what is there is not one)."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
