"""The grid, run for real with the fake scorer and the scripted LLM: tables checked against the
stores they came from, skipping and resuming cells, bad grid specs."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from promptclimb.bench.grid import GridSpec, cell_config, cells, load_spec
from promptclimb.bench.runner import InProcessExecutor, cell_dir, run_grid
from promptclimb.bench.tables import t_interval, write_tables
from promptclimb.candidate import TrialState
from promptclimb.cli import main
from promptclimb.config import ConfigError
from promptclimb.registry import UnknownNameError
from promptclimb.store import RunStore

METHODS = ["hill_climb", "best_of_pool", "opro", "fixed:{}"]


def _spec(tmp_path: Path, **kw: object) -> GridSpec:
    data: dict[str, object] = {"tasks": ["demo", "demo:other"], "shots": [1], "seeds": [1, 2],
                               "methods": METHODS, "scorers": ["fake"], "llm": "scripted", "budget": 26,
                               "cache_dir": str(tmp_path / "cache"), "oracle_top_n": 3}
    data.update(kw)
    return GridSpec.model_validate(data)


def test_tables_match_the_stores(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    out = tmp_path / "grid"
    results = run_grid(spec, out, InProcessExecutor())
    assert [r["status"] for r in results] == ["ran"] * len(cells(spec))
    tables = write_tables(spec, out)["tables"]

    # recompute Table 1 independently from each cell's run store
    header, rows = tables["test"]
    assert header == ["method", "demo", "demo:other", "average"]
    for row in rows:
        method = row[0]
        means = []
        for col, task in enumerate(("demo", "demo:other"), start=1):
            tests = []
            for seed in (1, 2):
                cell = next(c for c in cells(spec) if (c.method, c.task, c.seed) == (method, task, seed))
                store = RunStore.open(cell_dir(out, cell))
                final = store.result("final")
                trial = next(t for t in store.trials() if t.number == final["trial"])
                assert trial.test_score == final["test_score"]
                assert store.result("usage")["scorer_queries"] <= 26
                tests.append(100 * final["test_score"])
            mean, std = float(np.mean(tests)), float(np.std(tests, ddof=1))
            means.append(mean)
            assert row[col] == f"{mean:.1f} ± {std:.1f}"
        assert row[-1] == f"{np.mean(means):.1f}"

    # paired differences: hill_climb minus best_of_pool, pair by pair
    paired = {r[0]: r for r in tables["paired_test"][1]}
    row = paired["hill_climb − best_of_pool"]
    assert row[1] == "4"
    (out / "tables.md").read_text().index("Paired test-accuracy differences")
    assert (out / "table_test.csv").read_text().splitlines()[0] == "method,demo,demo:other,average"


def test_each_reference_gets_its_paired_table_recomputed_from_the_stores(tmp_path: Path) -> None:
    spec = _spec(tmp_path, methods=["hill_climb", "best_of_pool", "fixed:{}"], tasks=["demo"],
                 references=["fixed:{}", "best_of_pool"])
    out = tmp_path / "g"
    run_grid(spec, out, InProcessExecutor())
    tables = write_tables(spec, out)["tables"]
    test = {c: 100 * RunStore.open(cell_dir(out, c)).result("final")["test_score"] for c in cells(spec)}
    by = {(c.method, c.seed): v for c, v in test.items()}
    rows = {r[0]: r for r in tables["paired_test"][1]}  # the first reference keeps the plain name
    assert set(rows) == {"fixed:{} − hill_climb", "fixed:{} − best_of_pool"}
    mean = np.mean([by[("fixed:{}", s)] - by[("best_of_pool", s)] for s in (1, 2)])
    assert rows["fixed:{} − best_of_pool"][2] == f"{mean:+.2f}"
    assert {r[0] for r in tables["paired_test_best_of_pool"][1]} == {"best_of_pool − hill_climb",
                                                                   "best_of_pool − fixed:{}"}
    md = (out / "tables.md").read_text()
    assert "fixed:{} minus each method" in md and "best_of_pool minus each method" in md
    assert (out / "table_paired_test_best_of_pool.csv").is_file()


def test_every_method_gets_the_same_scorer_budget(tmp_path: Path) -> None:
    spec = _spec(tmp_path, methods=["hill_climb", "opro", "llm_no_feedback"], tasks=["demo"], seeds=[1])
    run_grid(spec, tmp_path / "g", InProcessExecutor())
    used = {c.method: RunStore.open(cell_dir(tmp_path / "g", c)).result("usage")["scorer_queries"]
            for c in cells(spec)}
    assert set(used.values()) == {26}


def test_t_interval() -> None:
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and lo == pytest.approx(2 - 4.302653 / math.sqrt(3)) and hi > 3
    assert math.isnan(t_interval([1.0])[1])


def test_rerun_skips_finished_cells(tmp_path: Path) -> None:
    spec = _spec(tmp_path, tasks=["demo"], seeds=[1])
    run_grid(spec, tmp_path / "g", InProcessExecutor())
    again = run_grid(spec, tmp_path / "g", InProcessExecutor())
    assert {r["status"] for r in again} == {"skipped"}


def test_killed_grid_finishes_only_the_missing_cells(tmp_path: Path) -> None:
    out = tmp_path / "g"
    args = ["--tasks", "demo", "--shots", "1", "--seeds", "1,2,3", "--methods", "hill_climb|opro",
            "--scorers", "fake", "--llm", "scripted", "--budget", "40", "--cache-dir", str(tmp_path / "c"),
            "--out", str(out)]
    # slow the fake scorer down so the kill lands mid-grid
    cfg = tmp_path / "grid.toml"
    cfg.write_text("[scorer_options]\ndelay_s = 0.03\n")
    cmd = [sys.executable, "-m", "promptclimb.cli", "bench", "--config", str(cfg), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "cells.log"
    deadline = time.time() + 120
    while (not log.exists() or len(log.read_text().splitlines()) < 2) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = [json.loads(line)["cell"] for line in log.read_text().splitlines()]
    assert 2 <= len(done_before) < 6
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()][len(done_before):]
    assert {r["cell"] for r in lines if r["status"] == "skipped"} == set(done_before)
    ran = [r for r in lines if r["status"] != "skipped"]
    assert len(ran) == 6 - len(done_before)
    assert all(RunStore.open(p).finished for p in (out / "cells").iterdir())


@pytest.mark.parametrize(("override", "error", "message"), [
    ({"methods": ["nope"]}, UnknownNameError, "unknown method 'nope'"),
    ({"tasks": ["imagenet-9"]}, UnknownNameError, "unknown task 'imagenet-9'"),
    ({"scorers": ["clip9"]}, UnknownNameError, "unknown scorer 'clip9'"),
    ({"seeds": []}, ConfigError, "the grid is empty"),
])
def test_bad_grid_specs_fail_before_work(tmp_path: Path, override: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_spec(None, {"tasks": ["demo"], "scorers": ["fake"], "llm": "scripted", **override})


def test_bench_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--methods", "hill_climb|nope", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "unknown method 'nope'" in err and err.count("\n") == 1
    assert not (tmp_path / "g").exists()


def test_selection_study_scores_each_rules_pick_on_test(tmp_path: Path) -> None:
    from promptclimb.bench.selection_study import selection_study
    from promptclimb.testing.fake_scorer import FakeScorer

    spec = _spec(tmp_path, tasks=["demo"], seeds=[1, 2], methods=["hill_climb", "best_of_pool"])
    run_grid(spec, tmp_path / "g", InProcessExecutor())
    md = selection_study(spec, tmp_path / "g", ("hill_climb", "best_of_pool"))
    scorer = FakeScorer()
    by_method = {m: [RunStore.open(cell_dir(tmp_path / "g", c)).result("selection") for c in cells(spec)
                     if c.method == m] for m in spec.methods}
    picks = by_method["hill_climb"]
    # the paired rows: hill_climb minus best_of_pool, seed by seed, each choosing by the same rule
    diffs = [100 * (a["bootstrap"]["test"] - b["bootstrap"]["test"])
             for a, b in zip(by_method["hill_climb"], by_method["best_of_pool"], strict=True)]
    row = next(line for line in md.splitlines() if line.startswith("| bootstrap | hill_climb − best_of_pool |"))
    assert row.split(" | ")[2:4] == ["2", f"{np.mean(diffs):+.2f}"]
    # a rule against the other method as published: hill_climb choosing so, best_of_pool by best_train
    cross = [100 * (a["best_train_sig"]["test"] - b["best_train"]["test"])
             for a, b in zip(by_method["hill_climb"], by_method["best_of_pool"], strict=True)]
    row = next(line for line in md.splitlines()
               if line.startswith("| best_train_sig | hill_climb (best_train_sig) − best_of_pool (best_train) |"))
    assert row.split(" | ")[2:4] == ["2", f"{np.mean(cross):+.2f}"]
    for rule in ("best_train", "best_train_ce", "best_train_sig", "margin", "bootstrap", "best_val_top10",
                 "oracle_top10"):
        tests = [100 * scorer.score(p[rule]["template"], "test").value for p in picks]
        row = next(line for line in md.splitlines() if line.startswith(f"| hill_climb | {rule} |"))
        assert row == f"| hill_climb | {rule} | {np.mean(tests):.1f} ± {np.std(tests, ddof=1):.1f} |"
    ens = [100 * scorer.score_ensemble(p["ensemble_top5"]["template"].split(" | "), "test").value for p in picks]
    row = next(line for line in md.splitlines() if line.startswith("| hill_climb | ensemble_top5 |"))
    assert row == f"| hill_climb | ensemble_top5 | {np.mean(ens):.1f} ± {np.std(ens, ddof=1):.1f} |"
    assert all(len(p["ensemble_top5"]["template"].split(" | ")) == 5 for p in picks)
    # the oracle is never below any rule's pick
    for p in picks:
        assert all(p["oracle_top10"]["test"] >= p[r]["test"] for r in ("best_train", "margin", "bootstrap"))
    # oracle_all: the best test accuracy of any template each run scored, paired like the rules
    for cell, p in zip([c for c in cells(spec) if c.method == "hill_climb"], picks, strict=True):
        store = RunStore.open(cell_dir(tmp_path / "g", cell))
        templates = {t.template for t in store.trials() if t.state is TrialState.COMPLETE}
        store.close()
        assert p["oracle_all"]["test"] == max(scorer.score(t, "test").value for t in templates)
        assert p["oracle_all"]["test"] >= p["oracle_top10"]["test"]
    all_diffs = [100 * (a["oracle_all"]["test"] - b["oracle_all"]["test"])
                 for a, b in zip(by_method["hill_climb"], by_method["best_of_pool"], strict=True)]
    row = next(line for line in md.splitlines() if line.startswith("| oracle_all | hill_climb − best_of_pool |"))
    assert row.split(" | ")[2:4] == ["2", f"{np.mean(all_diffs):+.2f}"]


def test_a_grid_on_local_ray_matches_local_processes(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import ray

    from promptclimb.bench.runner import ProcessExecutor, RayExecutor

    spec = _spec(tmp_path, tasks=["demo"], seeds=[1, 2], methods=["hill_climb", "best_of_pool"])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_grid(spec, tmp_path / "ray", RayExecutor(None))
    finally:
        ray.shutdown()
    run_grid(spec, tmp_path / "proc", ProcessExecutor(2))
    a = write_tables(spec, tmp_path / "ray")["tables"]
    b = write_tables(spec, tmp_path / "proc")["tables"]
    assert a == b
    for c in cells(spec):
        ta = [(t.template, t.train_score) for t in RunStore.open(cell_dir(tmp_path / "ray", c)).trials()]
        tb = [(t.template, t.train_score) for t in RunStore.open(cell_dir(tmp_path / "proc", c)).trials()]
        assert ta == tb and ta


def test_an_unanswering_ray_address_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["bench", "--tasks", "demo", "--scorers", "fake", "--llm", "scripted", "--methods", "best_of_pool",
                 "--ray", f"127.0.0.1:{port}", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and "does not answer" in err and err.count("\n") == 1


def test_a_method_entry_carries_its_options_and_racing_cells_race(tmp_path: Path) -> None:
    from promptclimb.bench.grid import method_entry
    from promptclimb.bench.tables import collect

    assert method_entry("hill_climb?racing=true&restarts=2") == ("hill_climb", {"racing": True, "restarts": 2})
    assert method_entry("hill_climb?racing.minibatch=20") == ("hill_climb", {"racing": {"minibatch": 20}})
    assert method_entry("fixed:is it a {}?") == ("fixed:is it a {}?", {})
    spec = _spec(tmp_path, methods=["hill_climb", "hill_climb?racing=true"], tasks=["demo"], seeds=[1],
                 scorer_options={"n_items": 160}, method_options={"hill_climb": {"restarts": 1}})
    plain, racing = (cell_config(spec, c) for c in cells(spec))
    assert (plain.method, racing.method) == ("hill_climb", "hill_climb")
    assert not plain.racing.enabled and racing.racing.enabled and racing.method_options == {"restarts": 1}
    out = tmp_path / "grid"
    run_grid(spec, out, InProcessExecutor())
    rows = {r.cell.method: r for r in collect(spec, out)}
    assert rows["hill_climb"].images == 160 * rows["hill_climb"].queries
    assert rows["hill_climb?racing=true"].images < 160 * rows["hill_climb?racing=true"].queries
    curve = RunStore.open(cell_dir(out, cells(spec)[1])).result("curve")
    assert curve[-1]["images"] == rows["hill_climb?racing=true"].images
    header, table = write_tables(spec, out)["tables"]["cost"]
    assert "images scored" in header and [r[0] for r in table] == spec.methods


GRID_DIR = Path(__file__).parents[2] / "benchmarks" / "grids"
GRIDS = sorted(GRID_DIR.glob("*.toml"))


def test_the_racing_grid_file_loads() -> None:
    from promptclimb.bench.grid import method_entry

    spec = load_spec(GRID_DIR / "racing_heldout.toml", {})
    assert [method_entry(m) for m in spec.methods] == [  # a table of settings turns racing on
        ("hill_climb", {}), ("hill_climb", {"racing": True}), ("hill_climb", {"racing": {"top_k": 1, "z": 0.5}})]
    aggressive = cell_config(spec, next(c for c in cells(spec) if c.method == spec.methods[2])).racing
    assert aggressive.enabled and (aggressive.top_k, aggressive.z) == (1, 0.5)


@pytest.mark.parametrize("path", GRIDS, ids=[p.stem for p in GRIDS])
def test_every_grid_file_in_the_repository_loads_and_configures_each_cell(path: Path) -> None:
    spec = load_spec(path, {})
    assert all(cell_config(spec, c).method for c in cells(spec))


def test_pre_registered_grids_use_seeds_no_other_grid_uses() -> None:
    # "fresh" grids claim seeds nothing was read off before; a reused seed would void that. A
    # "*_replicate" grid is a later test that reuses the fresh grids' cells, so it may use their
    # seeds, and only theirs.
    seeds = {p.stem: set(load_spec(p, {}).seeds) for p in GRIDS}
    fresh = [name for name in seeds if name.startswith("fresh")]
    followups = [name for name in seeds if name.endswith("_replicate")]
    assert len(fresh) >= 3 and followups
    for name in fresh:
        others = set().union(*(s for other, s in seeds.items() if other not in (name, *followups)))
        assert not seeds[name] & others, (name, sorted(seeds[name] & others))
    fresh_seeds = set().union(*(seeds[name] for name in fresh))
    for name in followups:
        assert seeds[name] <= fresh_seeds, (name, sorted(seeds[name] - fresh_seeds))
