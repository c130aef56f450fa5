"""The read API (``newsagg serve``): stories, one story, the change feed, and a story page.

Read-only by construction: only GET routes exist, so any other verb gets 405 from the router
before authentication runs. Every JSON route needs ``Authorization: Bearer <token>`` (tokens from
``newsagg token create``); the page at ``/`` takes the token once as ``?token=``, moves it into
an HttpOnly, SameSite=Strict cookie and redirects, so it does not linger in the address bar or in
history. The cookie opens the page only, never the JSON routes.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pipeline import __version__
from pipeline.dedup import story_to_json, with_evidence
from pipeline.errors import NewsaggError
from pipeline.serve.tokens import verify_token
from pipeline.serve.web.filters import choices, parse_filters, story_ids
from pipeline.serve.web.page import login_page, not_found_page, outlet_palette, stories_page, story_page
from pipeline.store.core import Store
from pipeline.timeutil import iso as _iso

COOKIE = "newsagg_token"
STORY_ID = r"^[A-Za-z0-9_.-]{1,32}$"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

Stamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class ArticleOut(BaseModel):
    article_id: str
    url: str
    source: str
    title: str | None
    published_at: Stamp | None
    copy_of: str | None = Field(description="article_id of the report this one copies")
    live_blog: bool = Field(description="a live blog: its text holds every entry so far, and may grow")


class FigureOut(BaseModel):
    kind: Literal["killed", "injured", "missiles", "drones", "intercepted", "place"]
    value: int | str = Field(description="a count, or a place name for kind 'place'")
    source: str
    url: str
    reported_at: Stamp | None
    source_claim: str | None = Field(
        description='who the report says gives the figure ("air force", "Russian defence ministry"); '
        "null when it does not say. Disagreeing figures are all listed, each with its own claim"
    )


class SpanOut(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    from_: Stamp | None = Field(alias="from")
    to: Stamp | None


class EventWindowOut(SpanOut):
    reports_with_window: int = Field(description="how many reports give a time for the event")


class SimilarityOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    min: float | None = Field(description="the lowest of the reports' nearest-report similarities")
    mean: float | None


class EvidenceOut(BaseModel):
    """Why the reports are one story, as dedup found it (docs/store.md, ``evidence``). More keys
    may come; consumers should ignore keys they do not know."""

    model_config = ConfigDict(extra="allow")

    reports: int
    languages: list[str]
    shared_names: list[str] = Field(description="names at least two reports give (lower case)")
    shared_places: list[str] = Field(description="cities at least two reports' leads name")
    shared_counts: list[str] = Field(description="numbers at least two reports' leads give")
    event_window: EventWindowOut = Field(description="the time every dated report allows for the event")
    published: SpanOut
    nearest_similarity: SimilarityOut = Field(
        description="each report's text similarity (0..1) to its closest fellow report"
    )


class StoryOut(BaseModel):
    """Exactly an element of ``newsagg stories --json``."""

    story_id: str
    title: str | None
    summary: str | None
    first_seen: Stamp
    last_updated: Stamp
    articles: list[ArticleOut]
    figures: list[FigureOut]
    evidence: EvidenceOut | None = Field(description="why the reports are one story")
    live_blog: bool = Field(
        description="whether any of its articles is a live blog: the story is still unfolding"
    )


class StoryPage(BaseModel):
    stories: list[StoryOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class ChangeOut(BaseModel):
    change_seq: int
    kind: Literal["story", "article"]
    id: str
    op: Literal["insert", "update", "delete"]
    changed_at: Stamp | None


class ChangePage(BaseModel):
    changes: list[ChangeOut]
    last_seq: int = Field(description="pass as ?after= to get the next page")


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no token, or not a valid one"},
    503: {"model": Problem, "description": "the store is unavailable"},
}

_bearer = HTTPBearer(auto_error=False, description="a token from `newsagg token create NAME`")


def _iso_only(value: Any) -> Any:
    """Query times are ISO 8601 only: pydantic alone also reads a bare number as Unix seconds
    (``?since=4.68e-170`` was 1970), which no client means and the OpenAPI format forbids."""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO 8601 date-time") from None
    return value


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01 or 9999-12-31 with an offset
        return (datetime.min if value.year < 2 else datetime.max).replace(tzinfo=UTC)


def only_query(*names: str) -> Any:
    """Reject query parameters a route does not know: a typo such as ``?afer=`` must not
    silently restart a consumer from the beginning."""
    allowed = set(names)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:  # the documented 422 shape, as for any other invalid parameter
            raise RequestValidationError(
                [
                    {
                        "type": "extra_forbidden",
                        "loc": ("query", name),
                        "msg": f"unknown query parameter; known: {', '.join(sorted(allowed)) or 'none'}",
                        "input": request.query_params[name],
                    }
                    for name in unknown
                ]
            )

    return Depends(check)


def create_app(store: Store) -> FastAPI:
    """The ASGI app over ``store`` (checked readable; it only reads)."""
    app = FastAPI(
        title="newsagg read API",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="Canonical stories and the change feed of a newsagg store. "
        "Read-only; bearer tokens from `newsagg token create`.",
    )
    app.state.store = store

    def require_token(creds: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> str:
        name = verify_token(store, creds.credentials if creds else None)
        if name is None:
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return name

    @app.exception_handler(NewsaggError)
    async def store_failed(_request: Request, exc: NewsaggError) -> JSONResponse:
        logging.getLogger("newsagg").error("read API: %s", exc)
        return JSONResponse({"detail": "the store is unavailable"}, status_code=503)

    authed = [Depends(require_token)]

    @app.get(
        "/stories",
        response_model=StoryPage,
        responses=ERRORS,
        dependencies=[*authed, only_query("limit", "offset", "since")],
        summary="Stories, most recently updated first",
    )
    def list_stories(
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        since: Annotated[
            datetime | None,
            BeforeValidator(_iso_only),
            Query(description="only stories updated at or after this time (ISO 8601)"),
        ] = None,
    ) -> dict[str, Any]:
        ids = store.story_ids(limit + 1, offset, _as_utc(since) if since is not None else None)
        more = len(ids) > limit
        ids = ids[:limit]
        found = {s.story_id: s for s in with_evidence(store, store.stories(story_ids=ids))} if ids else {}
        return {
            "stories": [story_to_json(found[i]) for i in ids if i in found],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if more else None,
        }

    @app.get(
        "/stories/{story_id}",
        response_model=StoryOut,
        dependencies=[*authed, only_query()],
        responses={**ERRORS, 404: {"model": Problem, "description": "no such story"}},
        summary="One story",
    )
    def get_story(story_id: Annotated[str, Path(pattern=STORY_ID)]) -> dict[str, Any]:
        found = store.stories(story_ids=[story_id])
        if not found:
            raise HTTPException(404, f"no story {story_id}")
        return story_to_json(with_evidence(store, found)[0])

    @app.get(
        "/changes",
        response_model=ChangePage,
        responses=ERRORS,
        dependencies=[*authed, only_query("after", "limit")],
        summary="The change feed, oldest first, after a cursor",
    )
    def get_changes(
        after: Annotated[int, Query(ge=0, le=2**62)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        page = store.changes_after(after, limit)
        return {
            "changes": [
                {
                    "change_seq": c.change_seq,
                    "kind": c.kind,
                    "id": c.id,
                    "op": c.op,
                    "changed_at": _iso(c.changed_at),
                }
                for c in page
            ],
            "last_seq": page[-1].change_seq if page else after,
        }

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def story_list_page(
        request: Request,
        token: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        q: str | None = None,
        outlet: str | None = None,
        place: str | None = None,
        date_from: Annotated[str | None, Query(alias="from")] = None,
        date_to: Annotated[str | None, Query(alias="to")] = None,
    ) -> Response:
        if token is not None:
            if verify_token(store, token) is None:
                return HTMLResponse(
                    login_page("That token is not valid (or was revoked)."),
                    status_code=401,
                    headers=PAGE_HEADERS,
                )
            target = "/" if limit == 20 else f"/?limit={limit}"
            response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
            response.set_cookie(
                COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path="/",
            )
            return response
        if verify_token(store, request.cookies.get(COOKIE)) is None:
            return HTMLResponse(
                login_page("This page needs an API token."), status_code=401, headers=PAGE_HEADERS
            )
        filters = parse_filters(q, outlet, place, date_from, date_to)
        ids, more = story_ids(store.engine, filters, limit, offset)
        found = {s.story_id: s for s in store.stories(story_ids=ids)} if ids else {}
        outlets, places = choices(store.engine)
        html = stories_page(
            [found[i] for i in ids if i in found],
            filters=filters,
            outlets=outlets,
            places=places,
            offset=offset,
            limit=limit,
            more=more,
        )
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @app.get("/story/{story_id}", include_in_schema=False, response_class=HTMLResponse)
    def one_story_page(request: Request, story_id: Annotated[str, Path(pattern=STORY_ID)]) -> Response:
        if verify_token(store, request.cookies.get(COOKIE)) is None:
            return HTMLResponse(
                login_page("This page needs an API token."), status_code=401, headers=PAGE_HEADERS
            )
        found = store.stories(story_ids=[story_id])
        if not found:
            return HTMLResponse(
                not_found_page(f"No story {story_id} in this store (merged into another, or removed)."),
                status_code=404,
                headers=PAGE_HEADERS,
            )
        palette = outlet_palette(choices(store.engine)[0])
        page = story_page(with_evidence(store, found)[0], palette=palette)
        return HTMLResponse(page, headers=PAGE_HEADERS)

    return app


class RedactTokens(logging.Filter):
    """Keep ``?token=`` values out of uvicorn's access log."""

    _TOKEN = re.compile(r"(token=)[^&\s]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


# A request line and headers beyond this are refused (h11 answers 400 and closes); the API takes
# no request bodies. Without caps, four 400 MB headers grew the server by 1.5 GB for good.
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_CONNECTIONS = 100


class LimitBodies:
    """ASGI middleware: a request announcing a body over :data:`MAX_BODY_BYTES`, or a chunked
    one (of unknown size), gets 413 before the app or the body is read."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length", b"0")
            too_big = b"transfer-encoding" in headers or not length.isdigit() or int(length) > self.max_body
            if too_big:
                await send(
                    {"type": "http.response.start", "status": 413, "headers": [(b"connection", b"close")]}
                )
                await send({"type": "http.response.body", "body": b"request body too large\n"})
                return
        await self.app(scope, receive, send)


def serve(store: Store, host: str, port: int) -> None:
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.run(
        LimitBodies(create_app(store)),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        http="h11",  # httptools puts no bound on header size
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
    )
