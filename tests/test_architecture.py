"""The layout's promises, checked: `pipeline` stands alone, and the DAG file stays cheap to parse."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
import pipeline
names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")
         if ".migrations" not in m.name]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


def test_pipeline_imports_neither_airflow_nor_scrapy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout)
    assert len(report["imported"]) > 20  # the walk really found the sub-packages
    forbidden = {"airflow", "scrapy", "twisted"}
    leaked = sorted(m for m in report["loaded"] if m.split(".")[0] in forbidden)
    assert leaked == [], f"pipeline pulled in {leaked[:5]}"


def test_every_subpackage_says_why_it_exists() -> None:
    for init in sorted((ROOT / "pipeline").glob("*/__init__.py")):
        text = init.read_text(encoding="utf-8").strip()
        assert text.startswith('"""') and len(text) > 20, f"{init} has no docstring"


# What builds SQL: a module that imports one of these writes queries, which only pipeline/store may.
_QUERY_CONSTRUCTS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_", "bindparam"}


def sql_builders(root: Path) -> list[str]:
    """``path: name`` for every import of a sqlalchemy query construct outside ``pipeline/store``
    (``from sqlalchemy import select``, ``import sqlalchemy`` used as ``sqlalchemy.select``)."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if rel.startswith("pipeline/store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
                found += [f"{rel}: {a.name}" for a in node.names if a.name in _QUERY_CONSTRUCTS]
                found += [f"{rel}: {a.name}" for a in node.names if a.name in ("sql", "*")]
            elif isinstance(node, ast.Import):
                aliases |= {a.asname or a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in _QUERY_CONSTRUCTS
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                found.append(f"{rel}: {node.value.id}.{node.attr}")
    return found


def test_only_the_store_builds_sql() -> None:
    for package in ("pipeline", "spiders", "dags"):
        assert sql_builders(ROOT / package) == [], f"SQL built outside pipeline/store in {package}"


def test_the_sql_check_sees_a_query_built_elsewhere(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    (package / "store").mkdir(parents=True)
    (package / "store" / "ok.py").write_text("from sqlalchemy import select\n", encoding="utf-8")
    (package / "types.py").write_text("from sqlalchemy import Connection\n", encoding="utf-8")
    (package / "bad.py").write_text("from sqlalchemy import func, select\n", encoding="utf-8")
    (package / "worse.py").write_text("import sqlalchemy as sa\nq = sa.text('x')\n", encoding="utf-8")
    assert sql_builders(package) == [
        "pipeline/bad.py: func",
        "pipeline/bad.py: select",
        "pipeline/worse.py: sa.text",
    ]
