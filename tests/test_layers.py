"""The import layers hold: `lint-imports` checks pyproject's import-linter contracts (report/ reaches
up to nothing, no cycles between the layers, the store knows no backend) as part of the tests, so a
change that breaks a layer fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    found = shutil.which("lint-imports") or shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert found, "lint-imports is not installed: `pip install import-linter==2.16` (in the dev extra)"
    return [found]


def test_the_layers_are_declared() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    kinds = {c["type"] for c in contracts}
    assert {"layers", "forbidden"} <= kinds
    report = next((c for c in contracts if c.get("source_modules") == ["promptclimb.report"]), None)
    assert report is not None and {"promptclimb.bench", "promptclimb.t2i"} <= set(report["forbidden_modules"])


def test_lint_imports_keeps_every_contract() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([*_lint_imports(), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
