from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "newsagg.toml"
    config.write_text('host_delay = 3.0\nstore_url = "sqlite:///from-file.db"\nfetch_workers = 2\n')
    defaults = load_settings(env={}, config_file=None)
    assert defaults.host_delay == 1.0 and defaults.allow_private_network is False
    from_file = load_settings(env={}, config_file=config)
    assert from_file.host_delay == 3.0 and from_file.fetch_workers == 2
    env = {"NEWSAGG_HOST_DELAY": "0.5", "NEWSAGG_ALLOW_PRIVATE_NETWORK": "1"}
    from_env = load_settings(env=env, config_file=config)
    assert from_env.host_delay == 0.5 and from_env.allow_private_network is True
    assert from_env.store_url == "sqlite:///from-file.db"
    flags = load_settings({"host_delay": 0.1, "store_url": None}, env=env, config_file=config)
    assert flags.host_delay == 0.1
    assert flags.store_url == "sqlite:///from-file.db"  # None means "flag not given"


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('[newsagg]\nsources = "/etc/newsagg/sources.yaml"\n')
    settings = load_settings(env={"NEWSAGG_CONFIG": str(config)})
    assert settings.sources == "/etc/newsagg/sources.yaml"
    with pytest.raises(ConfigError, match="not a file"):
        load_settings(env={"NEWSAGG_CONFIG": str(tmp_path / "missing.toml")})


def test_default_store_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings(env={"NEWSAGG_DATA_DIR": str(tmp_path)}, config_file=None)
    assert settings.resolved_store_url == f"sqlite:///{tmp_path / 'newsagg.db'}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEWSAGG_HOST_DELAY": "soon"}, "NEWSAGG_HOST_DELAY"),
        ({"NEWSAGG_ALLOW_PRIVATE_NETWORK": "maybe"}, "allow_private_network"),
    ],
)
def test_bad_environment_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env, config_file=None)


def test_unknown_keys_are_rejected(tmp_path: Path) -> None:
    config = tmp_path / "newsagg.toml"
    config.write_text("host_dealy = 2\n")
    with pytest.raises(ConfigError, match="unknown setting 'host_dealy'"):
        load_settings(env={}, config_file=config)
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"nope": 1}, env={})
