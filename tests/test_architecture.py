"""The layout's promises, checked: `pipeline` stands alone, and the DAG file stays cheap to parse."""

from __future__ import annotations

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
