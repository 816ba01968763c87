"""The peers from the command line: ``optimize --method gepa|evolve`` end to end, and one bench
grid with hill_climb, gepa and evolve at the same scorer budget (fake scorer, scripted LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptclimb.bench.grid import cells, load_spec
from promptclimb.bench.runner import cell_dir
from promptclimb.candidate import TrialState
from promptclimb.cli import main
from promptclimb.store import RunStore

CORE = ["--task", "demo", "--scorer", "fake", "--llm", "scripted", "--seed", "1", "--quiet"]


@pytest.mark.parametrize("method, prefix", [("gepa", "gepa/"), ("evolve", "evo/")])
def test_optimize_runs_each_peer_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            method: str, prefix: str) -> None:
    if method == "gepa":
        pytest.importorskip("gepa")
    run = tmp_path / "run"
    assert main(["optimize", *CORE, "--method", method, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["show", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] is True and summary["method"] == method
    assert summary["final_test_score"] is not None and summary["llm_calls"] >= 1
    stored = RunStore.open(run).stored_trials()
    peer = [s for s in stored if s.key.startswith(prefix)]
    assert any(s.trial.state is TrialState.COMPLETE for s in peer)
    assert summary["scorer_queries"] == sum(int(s.trial.metrics.get("queries", 0)) for s in stored)
    assert summary["best_template"] in {s.trial.template for s in stored}


def test_bench_runs_the_peers_beside_hill_climb_at_one_budget(tmp_path: Path) -> None:
    pytest.importorskip("gepa")
    out = tmp_path / "grid"
    argv = ["bench", "--tasks", "demo", "--shots", "1", "--seeds", "1,2", "--methods", "hill_climb|gepa|evolve",
            "--scorers", "fake", "--llm", "scripted", "--budget", "30", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    spec = load_spec(None, {"tasks": ["demo"], "shots": [1], "seeds": [1, 2], "scorers": ["fake"],
                            "methods": ["hill_climb", "gepa", "evolve"], "llm": "scripted", "budget": 30,
                            "cache_dir": str(tmp_path / "cache")})
    for cell in cells(spec):
        store = RunStore.open(cell_dir(out, cell))
        assert store.finished and store.result("usage")["scorer_queries"] <= 30
        assert store.result("final")["test_score"] is not None
    tables = (out / "tables.md").read_text()
    for method in ("gepa", "evolve"):
        assert f"| hill_climb − {method} | 2 |" in tables  # paired against hill_climb, seed by seed
        assert f"| {method} | 2 |" in tables  # its cost row: cells, queries, LLM calls and tokens


def test_the_gepa_extra_is_pinned_and_the_dev_install_brings_it() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gepa"] == ["gepa==0.1.4"] and "gepa==0.1.4" in extras["dev"]
    script = (root / "scripts" / "install.sh").read_text()
    dev_line = next(line for line in script.splitlines() if '"--dev" ]; then EXTRAS=' in line)
    assert "dev" in dev_line.split("EXTRAS=")[1]
