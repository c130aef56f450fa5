"""The small set of exceptions newsagg raises.

Callers catch :class:`NewsaggError` at stage boundaries; the subclass says whether a retry could
help (:attr:`retryable`) and the message is what a user reads.
"""

from __future__ import annotations


class NewsaggError(Exception):
    """Base class: anything newsagg raises on purpose."""

    retryable = False


class ConfigError(NewsaggError):
    """Bad configuration or source registry; fixing the input is the only cure."""


class FetchError(NewsaggError):
    """A fetch failed in a way a later attempt may not repeat (timeouts, 5xx, resets)."""

    retryable = True

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.retry_after = retry_after


class RefusedError(FetchError):
    """A fetch newsagg will not make: bad scheme, private address, too large, too many hops."""

    retryable = False


class ExtractionError(NewsaggError):
    """A page that cannot be cleaned into an article (not HTML, no body, undecodable)."""


class NoBodyError(ExtractionError):
    """A page with no article body (or one that is not language) that still states a title or a
    date: ``partial`` is the ``pipeline.extract.Extracted`` with them and an empty text."""

    def __init__(self, message: str, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial

    def __reduce__(self) -> tuple[type[NoBodyError], tuple[str, object]]:
        return type(self), (str(self), self.partial)  # crosses the extraction pool's processes


class StoreError(NewsaggError):
    """The store failed; the current batch was rolled back and nothing stored was lost."""

    retryable = True


class RunLockLost(StoreError):
    """Another run took the run lock from this one (its lock connection ended): every process of
    this run stops writing, so two runs never write at once."""
