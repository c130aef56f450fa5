"""The Compose stack, checked as files (no Docker engine here): the services and their order,
health checks, the two databases, the pool the DAG expects, the image, and that the commands
the README tells users to type exist."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from pipeline.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCS = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "airflow-local.sh"
MAKE_FRAGMENT = ROOT / "mk" / "airflow.mk"
DAG_FILE = ROOT / "dags" / "news_aggregation.py"

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"} | {"postgres", "redis"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env and (env[name] != "" or not op or not op.startswith(":")):
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise AssertionError(f"required variable {name} unset: {arg}")
        return ""

    text = _VAR.sub(one, text.replace("$$", "\x00"))
    return text.replace("\x00", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as Compose would see it with the values of .env.example."""
    data: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), env_example()))
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis"} <= set(services)
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    assert int(services["airflow-worker"]["deploy"]["replicas"]) >= 2


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert compose["services"]["airflow-init"].get("restart") == "no"


def test_celery_and_shared_secrets(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(compose["services"][name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", (
            name
        )
        for secret in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
            assert env[secret] and env[secret] != "", (name, secret)
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"


def test_metadata_and_store_are_two_databases_on_one_server(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = environment(services["airflow-scheduler"])
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    store = make_url(env["NEWSAGG_STORE_URL"])
    assert metadata.host == store.host == "postgres"
    assert metadata.database == "airflow" == environment(services["postgres"])["POSTGRES_DB"]
    assert store.database == "newsagg" and store.username == "newsagg"
    # The init script creates exactly the role and database the store URL names.
    [mount] = services["postgres"]["configs"]
    assert mount["target"].startswith("/docker-entrypoint-initdb.d/")
    sql = compose["configs"][mount["source"]]["content"]
    assert f"CREATE ROLE {store.username} LOGIN PASSWORD '{store.password}'" in sql
    assert f"CREATE DATABASE {store.database} OWNER {store.username}" in sql


def test_newsagg_configuration_is_the_clis(compose: dict[str, Any]) -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in AIRFLOW_SERVICES:
        env = environment(compose["services"][name])
        newsagg = {k for k in env if k.startswith("NEWSAGG_") and k != "NEWSAGG_HTTP_POOL_SLOTS"}
        assert {"NEWSAGG_STORE_URL", "NEWSAGG_SOURCES", "NEWSAGG_ALLOW_PRIVATE_NETWORK"} <= newsagg
        for key in newsagg:
            assert key[len("NEWSAGG_") :].lower() in fields, f"{name}: {key} is not a setting"
        volumes = compose["services"][name]["volumes"]
        assert any(v.endswith(f":{env['NEWSAGG_SOURCES']}:ro") for v in volumes), name
    assert environment(compose["services"]["airflow-scheduler"])["NEWSAGG_ALLOW_PRIVATE_NETWORK"] == "0"


def test_init_creates_the_pool_the_dag_uses(compose: dict[str, Any]) -> None:
    pool = re.search(r'^HTTP_POOL = "([^"]+)"', DAG_FILE.read_text(), re.M)
    assert pool
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert f"airflow pools set {pool.group(1)} " in script
    assert "/entrypoint airflow version" in script
    env = environment(compose["services"]["airflow-init"])
    assert env["_AIRFLOW_DB_MIGRATE"] == "true" and env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert f"pools set {pool.group(1)} " in SCRIPT.read_text()


def test_required_variables_are_in_env_example() -> None:
    text = COMPOSE.read_text()
    example = env_example()
    for match in _VAR.finditer(text.replace("$$", "")):  # $${X} is the container's own $X
        name, op = match.group(1), match.group(2)
        if op in (":?", "?") or not op:
            assert name in example, f"docker-compose.yml needs {name}; .env.example lacks it"
    with pytest.raises(AssertionError, match="required variable"):
        interpolate(text, {})


def test_dockerfile_extends_the_pinned_airflow_image_and_installs_the_project() -> None:
    text = DOCKERFILE.read_text()
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [airflow_pin] = [p for p in pins["airflow"] if p.startswith("apache-airflow==")]
    version = airflow_pin.split("==")[1]
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms == [f"apache/airflow:{version}-python3.11"]
    assert re.search(r"^COPY .*\bpipeline\b", text, re.M)
    assert re.search(r"^COPY .*\bspiders\b", text, re.M)
    assert re.search(r"^COPY .*\bdags /opt/airflow/dags", text, re.M)
    assert re.search(r'pip install .*"apache-airflow==\$\{AIRFLOW_VERSION\}" "\.\[airflow\]"', text)
    assert "USER root" not in text


def test_docs_commands_match_the_stack(compose: dict[str, Any]) -> None:
    docs = DOCS.read_text()
    services = set(compose["services"])
    commands = re.findall(r"^docker compose (.+?)(?:\s+#.*)?$", docs, re.M)
    assert "up airflow-init" in commands and "up -d" in commands and "build" in commands
    for command in commands:
        words = command.split()
        for word in words[1:]:
            if re.fullmatch(r"[a-z][a-z0-9-]*", word) and word not in (
                "airflow",
                "newsagg",
                "dags",
                "trigger",
                "stories",
            ):
                assert word in services, f"docs: `docker compose {command}`: no service {word}"
            if "=" in word and word.split("=")[0] in ("airflow-worker",):
                assert word.split("=")[0] in services
    # The order in the compose file's own header is the documented one.
    header = [
        line[2:].strip() for line in COMPOSE.read_text().splitlines() if line.startswith("#   docker compose")
    ]
    for line in header:
        assert line.split("#")[0].strip() in docs, line
    make_targets = set(re.findall(r"^([a-z][a-z-]*):", MAKE_FRAGMENT.read_text(), re.M))
    make_targets |= set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    for target in re.findall(r"make ([a-z][a-z-]*)", docs):
        assert target in make_targets, f"docs mention make {target}"
    assert "scripts/airflow-local.sh --sample-web" in docs


def test_local_script_is_valid_bash_and_documents_itself() -> None:
    assert SCRIPT.stat().st_mode & 0o111, "scripts/airflow-local.sh is not executable"
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    help_text = subprocess.run(
        ["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--sample-web" in help_text and "--executor celery --workers 2" in help_text
    text = SCRIPT.read_text()
    for setting in (
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=",
        "AIRFLOW__CORE__PARALLELISM=",
        "AIRFLOW__API__HOST=127.0.0.1",
        "NEWSAGG_STORE_URL=",
    ):
        assert setting in text, setting


def test_local_celery_mode_keeps_the_stacks_settings(compose: dict[str, Any]) -> None:
    """scripts/airflow-local.sh --executor celery is the Compose stack without Docker."""
    text = SCRIPT.read_text()
    celery = text[text.index('if [ "$EXECUTOR" = celery ]; then') :]
    celery = celery[: celery.index("else")]
    assert "AIRFLOW__CORE__EXECUTOR=CeleryExecutor" in celery
    assert "redis://127.0.0.1:6379/" in celery and "postgresql+psycopg://" in celery
    assert 'NEWSAGG_EXTRACT_WORKERS="${NEWSAGG_EXTRACT_WORKERS:-1}"' in celery
    assert "AIRFLOW__CELERY__RESULT_BACKEND=" in text and "db+" in text
    assert "celery worker --celery-hostname" in text
    services = compose["services"]
    worker = environment(services["airflow-worker"])
    assert worker["NEWSAGG_EXTRACT_WORKERS"] == "1"
    assert worker["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert services["airflow-worker"]["command"] == "celery worker"
    defaults = Settings()
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert int(env["NEWSAGG_SHARD_COUNT"]) == defaults.shard_count, name
        assert int(env["NEWSAGG_CLEAN_BATCH_SIZE"]) == defaults.clean_batch_size, name


@pytest.mark.skipif(not shutil.which("docker"), reason="no docker CLI")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin here: the file checks above stand in")
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
