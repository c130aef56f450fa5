"""The read API: bearer tokens, read-only verbs, the same story objects as the CLI, the OpenAPI
spec (checked by schemathesis) and the cookie-gated story page."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from pipeline.cli import main
from pipeline.serve.readapi import COOKIE, RedactTokens, create_app
from pipeline.serve.tokens import create_token, hash_token, list_tokens, revoke_token
from pipeline.store.core import Store
from tests.test_views import KYIV, fill


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    s.migrate()
    fill(s)
    yield s
    s.close()


@pytest.fixture
def token(store: Store) -> str:
    return create_token(store, "tests")


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/stories", "/stories/st_kyiv", "/changes"])
def test_no_token_or_a_wrong_token_is_401(client: TestClient, token: str, path: str) -> None:
    for headers in (
        {},
        bearer("nat_wrong"),
        bearer(token + "x"),
        {"Authorization": token},
        {"Authorization": f"Basic {token}"},
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers=bearer(token)).status_code == 200


def test_a_revoked_token_stops_working(client: TestClient, store: Store, token: str) -> None:
    assert client.get("/stories", headers=bearer(token)).status_code == 200
    revoke_token(store, "tests")
    assert client.get("/stories", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/stories", "/stories/st_kyiv", "/changes", "/"])
def test_write_verbs_are_405(client: TestClient, token: str, method: str, path: str) -> None:
    response = client.request(method, path, headers=bearer(token), json={"title": "x"})
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


def test_stories_are_the_objects_of_newsagg_stories_json(
    client: TestClient, token: str, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["stories", "--store", sqlite_url, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    body = client.get("/stories", headers=bearer(token)).json()
    assert body["stories"] == cli and body["next_offset"] is None
    one = client.get("/stories/st_kyiv", headers=bearer(token)).json()
    assert one == next(s for s in cli if s["story_id"] == "st_kyiv")
    assert {a["source"] for a in one["articles"]} == {"wire", "courier", "ledger"}
    # fill() stores no evidence: both work it out from the members, the same way
    assert one["evidence"]["reports"] == 3 and "Kyiv" in one["evidence"]["shared_places"]
    assert {
        "kind": "killed",
        "value": 2,
        "source": "ledger",
        "url": KYIV[2].url,
        "reported_at": "2026-11-19T06:05:00Z",
        "source_claim": "city military administration",
    } in one["figures"]
    assert {
        (f["source"], f["value"], f["source_claim"]) for f in one["figures"] if f["kind"] == "killed"
    } == {
        ("wire", 1, None),
        ("courier", 1, None),
        ("ledger", 2, "city military administration"),
    }


def test_stories_page_through(client: TestClient, token: str) -> None:
    first = client.get("/stories?limit=1", headers=bearer(token)).json()
    assert len(first["stories"]) == 1 and first["next_offset"] == 1
    second = client.get("/stories?limit=1&offset=1", headers=bearer(token)).json()
    assert len(second["stories"]) == 1 and second["next_offset"] is None
    everything = client.get("/stories", headers=bearer(token)).json()["stories"]
    assert first["stories"] + second["stories"] == everything
    late = client.get("/stories?since=2026-11-19T09:00:00Z", headers=bearer(token)).json()
    assert [s["story_id"] for s in late["stories"]] == ["st_odesa"]


def test_unknown_story_is_404_and_bad_input_422(client: TestClient, token: str) -> None:
    assert client.get("/stories/st_nope", headers=bearer(token)).status_code == 404
    assert client.get("/stories/bad%00id", headers=bearer(token)).status_code == 422
    assert client.get("/stories?limit=0", headers=bearer(token)).status_code == 422
    # a bare number is not a time (pydantic alone reads it as Unix seconds)
    assert client.get("/stories?since=4.68e-170", headers=bearer(token)).status_code == 422
    assert client.get("/stories?since=1700000000", headers=bearer(token)).status_code == 422
    assert client.get("/stories?since=2026-11-19", headers=bearer(token)).status_code == 200
    assert client.get("/changes?after=-1", headers=bearer(token)).status_code == 422
    typo = client.get("/changes?afer=5", headers=bearer(token))
    assert typo.status_code == 422 and "afer" in typo.text


def test_changes_page_with_a_cursor(client: TestClient, token: str) -> None:
    seen, after = [], 0
    while True:
        body = client.get(f"/changes?after={after}&limit=4", headers=bearer(token)).json()
        if not body["changes"]:
            assert body["last_seq"] == after
            break
        seen.extend(body["changes"])
        after = body["last_seq"]
    assert [c["change_seq"] for c in seen] == list(range(1, len(seen) + 1))
    assert {"story", "article"} == {c["kind"] for c in seen}
    assert {c["id"] for c in seen if c["kind"] == "story"} == {"st_kyiv", "st_odesa"}


def test_openapi_spec_is_served_without_docs_ui(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/stories", "/stories/{story_id}", "/changes"}
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    schemas = spec["components"]["schemas"]
    assert "evidence" in schemas["StoryOut"]["properties"]
    assert {"shared_places", "shared_names", "event_window"} <= set(schemas["EvidenceOut"]["required"])
    for path in spec["paths"].values():
        assert set(path) == {"get"}
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


# -- schemathesis against the spec ------------------------------------------------------------
# schemathesis' pytest loader (schemathesis.pytest.from_fixture) reads the private
# ``Function._nodeid`` that pytest 9 removed, so the cases come from its Hypothesis strategies.


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_spec(store: Store, token: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store))
    calls: list[str] = []

    @given(case=schema.as_strategy(generation_mode=mode, headers=bearer(token)))
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        calls.append(case.operation.path)
        case.call_and_validate()

    check()
    assert {"/stories", "/stories/{story_id}", "/changes"} <= set(calls)


# -- the story page -----------------------------------------------------------------------------


def test_page_needs_a_token_and_keeps_it_in_a_cookie(client: TestClient, token: str) -> None:
    bare = client.get("/")
    assert bare.status_code == 401 and 'name="token"' in bare.text
    assert "script-src" not in bare.headers["content-security-policy"]
    assert "default-src 'none'" in bare.headers["content-security-policy"]
    assert client.get("/?token=nat_wrong").status_code == 401
    moved = client.get(f"/?token={token}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/"
    cookie = moved.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/")  # the client kept the cookie
    assert page.status_code == 200
    assert KYIV[2].title in page.text and "<script" not in page.text
    story = client.get("/story/st_kyiv")  # each story has its own page, with the chart
    assert story.status_code == 200 and "<svg" in story.text and "<script" not in story.text
    for outlet in ("wire", "courier", "ledger"):
        assert f'data-outlet="{outlet}"' in page.text
    client.cookies.clear()
    assert client.get("/", headers=bearer(token)).status_code == 401  # the page wants a cookie
    client.cookies.set(COOKIE, token)
    assert client.get("/stories").status_code == 401  # the JSON routes want the bearer header


def test_page_escapes_what_outlets_wrote(store: Store, token: str) -> None:
    from dataclasses import replace

    with store.begin() as conn:
        store.upsert_article(
            conn,
            replace(
                KYIV[0],
                url="https://wire.example/x",
                article_id="",
                title='<script>alert("x")</script>',
                text="other",
            ),
        )
    from pipeline.serve.web.page import stories_page

    html = stories_page(store.stories())
    assert "<script>" not in html


# -- tokens on the command line -------------------------------------------------------------


def test_token_commands(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "create", "alice", "--store", sqlite_url]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("nat_") and len(token) > 40 and "shown only now" in err
    store = Store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT token_sha256 FROM api_tokens").scalar_one()
        assert stored == hash_token(token) and token not in stored
        assert main(["token", "create", "alice", "--store", sqlite_url]) == 2
        assert "revoke it first" in capsys.readouterr().err
        assert main(["token", "revoke", "alice", "--store", sqlite_url]) == 0
        assert main(["token", "revoke", "alice", "--store", sqlite_url]) == 2
        assert main(["token", "create", "alice", "--store", sqlite_url]) == 0  # name reusable
        capsys.readouterr()
        assert main(["token", "list", "--store", sqlite_url]) == 0
        assert "alice" in capsys.readouterr().out and token not in out.replace(token, "", 1)
        assert [t.name for t in list_tokens(store)] == ["alice"]
        assert main(["token", "create", "no spaces", "--store", sqlite_url]) == 2
    finally:
        store.close()


def test_access_log_never_shows_a_token() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/?token=nat_secret&limit=5", "1.1", 303),
        None,
    )
    RedactTokens().filter(record)
    assert "nat_secret" not in record.getMessage() and "limit=5" in record.getMessage()


# -- newsagg serve ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_huge_header(port: int, megabytes: int) -> bytes:
    """Send a GET whose one header is ``megabytes`` long; returns what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stories HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        try:
            for _ in range(megabytes):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:  # the server hung up on us: what we want
            pass
        try:
            return sock.recv(4096)
        except OSError:
            return b""


def _send_big_body(port: int, token: str, size: int) -> bytes:
    """Send a GET with a ``size``-byte body; returns what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"GET /stories HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        sock.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode())
        with contextlib.suppress(OSError):  # the server hung up on us: what we want
            sock.sendall(b"x" * size)
        try:
            return sock.recv(4096)
        except OSError:
            return b""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc")
def test_newsagg_serve_caps_header_and_body_sizes(
    store: Store, token: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSAGG_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--store", sqlite_url, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/openapi.json", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        before = _rss_kb(proc.pid)
        answers = [_send_huge_header(port, 64) for _ in range(4)]
        after = _rss_kb(proc.pid)
        print(
            f"\nserve RSS before {before} kB, after four 64 MB headers {after} kB; answer {answers[0][:40]!r}"
        )
        assert all(a == b"" or a.startswith(b"HTTP/1.1 400") for a in answers), answers
        assert after - before < 32 * 1024  # kB: nowhere near the 256 MB sent
        refused = _send_big_body(port, token, 1 << 20)
        # 413, or no answer when the server hung up while the body was still coming (the reset
        # can overtake its answer); never a served request
        assert refused == b"" or refused.startswith(b"HTTP/1.1 413"), refused[:200]
        request = urllib.request.Request(f"{base}/stories/st_kyiv", headers=bearer(token))
        with urllib.request.urlopen(request, timeout=5) as r:  # still serving
            assert json.load(r)["story_id"] == "st_kyiv"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_newsagg_serve_answers_on_127_0_0_1(
    store: Store, token: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSAGG_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--store", sqlite_url, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/openapi.json", timeout=2) as r:
                    assert json.load(r)["info"]["title"] == "newsagg read API"
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    pytest.fail("newsagg serve exited:\n" + proc.communicate()[0].decode())
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        request = urllib.request.Request(f"{base}/stories/st_kyiv", headers=bearer(token))
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.load(r)["story_id"] == "st_kyiv"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/stories", timeout=5)
        assert denied.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{base}/?token={token}", timeout=5)  # 303 -> / without jar
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert token not in output
    assert "token=***" in output
