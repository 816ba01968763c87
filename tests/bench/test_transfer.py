"""Transfer across backbones, with the fake scorer as the source and salted fakes (``fake:b``) as
targets: the table checked against each stored template scored directly, the evaluation cache,
and bad target names failing in one line before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptclimb.bench.grid import GridSpec, cells
from promptclimb.bench.runner import InProcessExecutor, cell_dir, run_grid
from promptclimb.bench.transfer import write_transfer
from promptclimb.cli import main
from promptclimb.store import RunStore
from promptclimb.testing.fake_scorer import FakeScorer

TARGETS = ["fake:b", "fake:c"]


def _grid(tmp_path: Path, **kw: object) -> tuple[GridSpec, Path]:
    data: dict[str, object] = {"tasks": ["demo", "demo:other"], "shots": [1], "seeds": [1, 2],
                               "methods": ["hill_climb", "best_of_pool", "fixed:{}"], "scorers": ["fake"],
                               "llm": "scripted", "budget": 26, "cache_dir": str(tmp_path / "cache")}
    data.update(kw)
    spec = GridSpec.model_validate(data)
    out = tmp_path / "grid"
    run_grid(spec, out, InProcessExecutor())
    return spec, out


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def test_transfer_table_matches_direct_evaluation(tmp_path: Path) -> None:
    spec, out = _grid(tmp_path)
    result = write_transfer(spec, out, TARGETS)
    header, table = result["tables"]["transfer from fake"]
    assert header == ["method", "demo · fake (source)", "demo · fake:b", "demo · fake:c",
                      "demo:other · fake (source)", "demo:other · fake:b", "demo:other · fake:c",
                      "average · fake (source)", "average · fake:b", "average · fake:c"]
    scorers = {"fake": None, "fake:b": FakeScorer(salt="b"), "fake:c": FakeScorer(salt="c")}
    differs = False
    for row in table:
        method = row[0]
        means: dict[str, list[float]] = {name: [] for name in scorers}
        for t, task in enumerate(("demo", "demo:other")):
            per_backbone: dict[str, list[float]] = {name: [] for name in scorers}
            for cell in cells(spec):
                if (cell.method, cell.task) != (method, task):
                    continue
                final = RunStore.open(cell_dir(out, cell)).result("final")
                for name, scorer in scorers.items():
                    value = final["test_score"] if scorer is None else scorer.score(final["template"], "test").value
                    per_backbone[name].append(100 * value)
            differs |= per_backbone["fake"] != per_backbone["fake:b"]
            for b, name in enumerate(scorers):
                assert row[1 + 3 * t + b] == _fmt(per_backbone[name]), (method, task, name)
                means[name].append(float(np.mean(per_backbone[name])))
        assert row[7:] == [f"{np.mean(means[name]):.1f}" for name in scorers]
    assert differs  # the targets really are other backbones
    md = (out / "transfer.md").read_text()
    assert "templates found with fake," in md and "| hill_climb |" in md
    csv_lines = (out / "transfer.csv").read_text().splitlines()
    assert csv_lines[0].startswith("found with,method,demo · source,demo · fake:b")
    assert len(csv_lines) == 1 + len(spec.methods)


def test_rerun_evaluates_nothing_and_builds_once_per_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import promptclimb.run
    import promptclimb.vlm

    spec, out = _grid(tmp_path)
    built: list[str] = []
    tasks_built: list[str] = []
    real_scorer, real_task = promptclimb.vlm.build_scorer, promptclimb.run.build_task
    monkeypatch.setattr(promptclimb.vlm, "build_scorer", lambda s, **kw: built.append(s) or real_scorer(s, **kw))
    monkeypatch.setattr(promptclimb.run, "build_task", lambda s, **kw: tasks_built.append(s) or real_task(s, **kw))
    first = write_transfer(spec, out, TARGETS)
    groups = len(spec.tasks) * len(spec.seeds)
    assert sorted(built) == sorted(TARGETS * groups) and len(tasks_built) == groups
    assert 0 < first["cost"]["evaluated"] <= len(cells(spec)) * len(TARGETS)
    built.clear()
    again = write_transfer(spec, out, TARGETS)
    assert again["cost"]["evaluated"] == 0 and built == []
    assert again["tables"] == first["tables"]
    # a new target evaluates only itself
    third = write_transfer(spec, out, [*TARGETS, "fake:d"])
    assert set(built) == {"fake:d"} and third["cost"]["evaluated"] > 0


def test_bench_cli_transfer_goes_into_tables_and_report(tmp_path: Path) -> None:
    out = tmp_path / "g"
    args = ["bench", "--tasks", "demo", "--shots", "1", "--seeds", "1,2", "--methods", "best_of_pool|fixed:{}",
            "--scorers", "fake", "--llm", "scripted", "--budget", "20", "--cache-dir", str(tmp_path / "c"),
            "--transfer-to", "fake:b", "--out", str(out)]
    assert main(args) == 0
    assert "templates found with fake" in (out / "tables.md").read_text()
    assert "transfer from fake" in (out / "report.html").read_text()
    assert main(args) == 0  # a rerun appends the table to the rewritten tables.md once
    assert (out / "tables.md").read_text().count("### Transfer") == 1


@pytest.mark.parametrize(("target", "message"), [
    ("clip9", "unknown scorer 'clip9'"),
    ("conse:lite9", "conse:lite9: expected an image model"),
    ("conse", "scorer conse needs an image classification task"),
])
def test_bad_transfer_target_is_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         target: str, message: str) -> None:
    code = main(["bench", "--tasks", "demo", "--scorers", "fake", "--llm", "scripted", "--methods", "best_of_pool",
                 "--transfer-to", f"fake:b,{target}", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "g").exists()
