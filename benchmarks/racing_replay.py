"""Racing replayed on a grid's finished cells: what each racing setting would have saved and what
it would have picked, with the proposals held as they were.

For every finished cell of the given methods, the recorded trials are taken in their recorded
order and each new plain template is raced (racing.py, the run's own rule and seed) against the
pool and the trials of its own stream that survived so far; a pruned one leaves the history, as
in a racing run. Its images are counted rung by rung; the pick is the paper's rule (best on train)
over the templates that survived, scored on test. What this does NOT replay: a racing run tells
the LLM a pruned template was stopped early, so a conversational method would propose differently
afterwards (`promptclimb bench` with ``"hill_climb?racing=true"`` measures that for real). For
methods whose proposals ignore the scores (``llm_no_feedback``, ``best_of_pool``) the replay is
what a racing run would do.

Usage: ``python benchmarks/racing_replay.py --config benchmarks/grids/beyond_heldout.toml --shots 16
--out runs/beyond16 --methods "hill_climb|llm_no_feedback" --z 2,1,0.5,0``. Human-readable lines
first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.bench.grid import cell_config, cells, load_spec
from promptclimb.bench.runner import cell_dir
from promptclimb.bench.tables import t_interval
from promptclimb.candidate import Trial, TrialState
from promptclimb.racing import Racing
from promptclimb.run import build_parts
from promptclimb.selection import BestTrainSelector
from promptclimb.store import STORE_FILE, RunStore, StoredTrial


def replay(stored: list[StoredTrial], racing: Racing) -> tuple[int, list[Trial]]:
    """(images scored, the trials that survive) for one cell's recorded trials."""
    images, kept = 0, []
    by_stream: dict[int, list[Trial]] = {}
    pool: list[Trial] = []
    for st in stored:
        t = st.trial
        if t.state is not TrialState.COMPLETE or not t.template:
            continue
        is_pool = st.key.startswith("pool/")
        stream = by_stream.setdefault(t.restart, [])
        history = pool if is_pool else [*pool, *stream]
        outcome = racing.race(t.template, history)
        images += outcome.images
        if outcome.score is None:
            continue
        (pool if is_pool else stream).append(t)
        kept.append(t)
    return images, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shots", default=None)
    ap.add_argument("--methods", default="hill_climb")
    ap.add_argument("--z", default="2,1,0.5,0")
    ap.add_argument("--top-k", type=int, default=3)
    args = ap.parse_args()
    overrides: dict[str, Any] = {"shots": [int(s) for s in args.shots.split(",")]} if args.shots else {}
    spec = load_spec(args.config, overrides)
    methods, zs = args.methods.split("|"), [float(z) for z in args.z.split(",")]
    rows: dict[str, dict[str, Any]] = {}
    scorers: dict[tuple[str, int, int], Any] = {}
    for cell in cells(spec):
        if cell.method not in methods or not (cell_dir(args.out, cell) / STORE_FILE).exists():
            continue
        store = RunStore.open(cell_dir(args.out, cell))
        stored = store.stored_trials()
        store.close()
        trials = [st.trial for st in stored]
        key = (cell.task, cell.shots, cell.seed)
        if key not in scorers:
            scorers[key] = build_parts(cell_config(spec, cell)).scorer
        scorer = scorers[key]
        full = BestTrainSelector().select(trials)
        if not full:
            continue
        base_test = scorer.score(full[0].template or "", "test").value
        n = len(scorer.split_labels("train"))
        base_images = n * sum(1 for t in trials if t.state is TrialState.COMPLETE and t.template)
        for z in zs:
            racing = Racing(scorer, cell.seed, None, args.top_k, z)
            images, kept = replay(stored, racing)
            pick = BestTrainSelector().select(kept)[0]
            test = scorer.score(pick.template or "", "test").value
            r = rows.setdefault(f"{cell.method} z={z:g}", {"ratio": [], "diff": []})
            r["ratio"].append(images / base_images)
            r["diff"].append(100 * (test - base_test))
    print(f"{'method, racing.z':28} {'cells':>5} {'images / without':>17} {'test diff (points), 95% CI':>30}")
    out = {}
    for name, r in rows.items():
        mean, lo, hi = t_interval(r["diff"])
        ratio = float(np.mean(r["ratio"]))
        print(f"{name:28} {len(r['diff']):5d} {ratio:17.3f} {mean:+10.2f} [{lo:+.2f}, {hi:+.2f}]")
        out[name] = {"cells": len(r["diff"]), "images_ratio": ratio, "test_diff": mean, "ci": [lo, hi]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
