"""A private PostgreSQL server for tests that must restart one: the shared test server serves
every other test on the machine, so a restart fault needs a server of its own.

Started from the machine's PostgreSQL server binaries (``initdb``, ``pg_ctl``) on a free
loopback port, trust authentication, its data in a temporary directory removed afterwards. As
root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["PrivatePostgres"]


def _bin_dir() -> Path | None:
    """Debian keeps the server binaries off PATH (``/usr/bin/pg_ctl`` may be a wrapper)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """``with PrivatePostgres() as server:`` a running server; ``server.database(name)`` makes a
    database and returns its URL; ``server.restart()`` restarts it (fast shutdown: every
    session is ended, as when an operator or a package upgrade restarts the server)."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to start a private server with")
        self.bin = bin_dir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run a private server as")
            if shutil.which("runuser") is None:
                pytest.skip("running as root and runuser is absent: cannot start a server as postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="newsagg-pg-"))
        self.data = self.dir / "data"
        self._pg_ctl = str(self.bin / "pg_ctl")
        self._log = str(self.dir / "server.log")

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            log = Path(self._log).read_text(errors="replace")[-2000:] if Path(self._log).exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}\n{log}")

    def __enter__(self) -> PrivatePostgres:
        if self.as_user:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(self._pg_ctl, "-D", str(self.data), "-o", options, "-l", self._log, "-w", "start")
        return self

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def restart(self) -> None:
        # -l: the server must not inherit this process's pipes, or waiting for pg_ctl never ends
        self._run(self._pg_ctl, "-D", str(self.data), "-l", self._log, "-m", "fast", "-w", "restart")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
