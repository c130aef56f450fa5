"""Configuration in one place: defaults < file < environment < CLI flags.

The CLI, the DAG tasks and the spiders all call :func:`load_settings`; nothing else reads the
environment. The file is TOML (``newsagg.toml`` in the working directory, or ``NEWSAGG_CONFIG``),
with the same keys as :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.errors import ConfigError

ENV_PREFIX = "NEWSAGG_"
USER_AGENT = f"newsagg/{__version__} (+https://github.com/newsagg/newsagg; news aggregation bot)"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "newsagg"


@dataclass(frozen=True)
class Settings:
    """Every knob newsagg has. Field names are the file keys; ``NEWSAGG_<NAME>`` the env names."""

    store_url: str = ""  # empty: sqlite file under data_dir
    sources: str = "sources.yaml"
    allow_private_network: bool = False
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    user_agent: str = USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # wall clock for one response, body included (slow-loris guard)
    max_bytes: int = 10 * 1024 * 1024  # raw and decoded body cap
    max_redirects: int = 5
    host_delay: float = 1.0  # seconds between two requests to one host
    retry_after_cap: float = 120.0  # wait at most this long for Retry-After; beyond, defer host
    host_failure_limit: int = 5  # consecutive failures before a host is given up for the run
    # hosts fetched at once, each at its own delay; also held under half the open-file limit
    fetch_workers: int = 256
    keepalive_idle: float = 5.0  # seconds an idle keep-alive connection is kept for its host
    fetch_attempts: int = 3  # failed fetches of one URL, over runs, before it is dropped
    extract_workers: int = 0  # 0: one process per core
    clean_batch_size: int = 200
    shard_count: int = 16  # the DAG maps over this many shards of the registry (see pipeline.shards)
    story_window_hours: float = 72.0  # how long a story stays open to new reports
    schedule: str = "0 2 * * *"  # the nightly DAG's cron (UTC)
    crawl_page_limit: int = 1000  # per spider run, a guard against runaway crawls
    robots_crawl_delay_cap: float = 30.0
    worker_name: str = ""  # how an Airflow worker names itself in task records (empty: host name)

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{Path(self.data_dir).expanduser() / 'newsagg.db'}"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Turn a file or environment value into the field's type, or say clearly which key is bad."""
    default = _FIELDS[name].default
    if default is dataclasses.MISSING:
        default = ""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"expected 1/0, true/false, got {value!r}")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: bad value for {name!r}: {exc}") from None


def config_file_path(env: Mapping[str, str]) -> Path | None:
    explicit = env.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"NEWSAGG_CONFIG names {path}, which is not a file")
        return path
    local = Path("newsagg.toml")
    return local if local.is_file() else None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build settings from defaults, then the file, then the environment, then ``overrides``.

    ``overrides`` are CLI flags or DAG params; ``None`` values mean "not given" and are skipped.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file if config_file is not None else config_file_path(env)
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        section = data.get("newsagg", data)
        for key, value in section.items():
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(path))
    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in env:
            values[name] = _coerce(name, env[env_name], f"environment {env_name}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value, f"option --{key.replace('_', '-')}")
    return Settings(**values)


def worker_hostname() -> str:
    """Airflow's ``hostname_callable``: two workers on one machine (scripts/airflow-local.sh
    --executor celery) each record their own name on the tasks they run."""
    import socket

    try:
        name = load_settings().worker_name
    except ConfigError:
        name = ""
    return name or socket.getfqdn()
