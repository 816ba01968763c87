"""How much each selection rule recovers of the few-shot selection gap, measured on a grid's
finished cells: every rule picks from the same stored trials (train and margin figures only),
then the pick is scored on test. ``best_val_top10`` scores the top 10 train templates on the
val split (10 extra queries) and keeps the best there; ``ensemble_top5`` returns the top 5 on
train as one prompt ensemble (mean of their class embeddings), where the scorer can;
``best_train_sig`` keeps the pool's best template unless the pick beats it significantly on train;
``best_train_ce`` breaks train ties by cross-entropy (stores from before the scorers reported it
are rescored on train for it: the same figures the run was given, not new information). Two oracles
(report only, never a rule): ``oracle_top10``, the best test accuracy among the top 10 on train,
what a perfect rule could reach; ``oracle_all``, the best test accuracy of any template the run
scored, what its search found. Paired by seed, oracle_all tells search apart from selection: a
method whose search finds nothing better than another's cannot win by selection alone."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.bench.grid import GridSpec, cell_config, cells
from promptclimb.bench.runner import cell_dir
from promptclimb.bench.tables import mean_std_cell, t_interval
from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import is_set_key
from promptclimb.run import build_parts
from promptclimb.selection import SELECTORS, BestTrainSelector, BestValOfTopSelector
from promptclimb.store import STORE_FILE, RunStore
from promptclimb.vlm.base import score_prompt

SELECTOR_RULES = ("best_train", "best_train_ce", "best_train_sig", "margin", "bootstrap")  # selection.py, pure
RULES = (*SELECTOR_RULES, "best_val_top10", "ensemble_top5")
ORACLES = ("oracle_top10", "oracle_all")


def _with_cross_entropy(trials: list[Trial], scorer: Any) -> list[Trial]:
    """Trials of old stores lack the train cross-entropy their scorer gave; score it again."""
    out = []
    for t in trials:
        if t.state is TrialState.COMPLETE and t.template and "cross_entropy" not in t.metrics:
            ce = score_prompt(scorer, t.template, "train").metrics.get("cross_entropy")
            if ce is not None:
                t = t.with_(metrics={**t.metrics, "cross_entropy": ce})
        out.append(t)
    return out


def _picks(store: RunStore, scorer: Any) -> dict[str, dict[str, Any]]:
    trials = _with_cross_entropy(store.trials(), scorer)
    out: dict[str, dict[str, Any]] = {}
    for name in SELECTOR_RULES:
        ranked = SELECTORS[name]().select(trials)
        if ranked:
            out[name] = {"template": ranked[0].template}
    by_train = BestTrainSelector().select(trials)
    top = by_train[:10]
    if top and "val" in scorer.splits():  # what a run's finish does for this rule (Study._val_of_top)
        rule = BestValOfTopSelector()
        val_of = {t.number: score_prompt(scorer, t.template or "", "val").value for t in rule.needs_val(trials)}
        with_val = [t.with_(val_score=val_of[t.number]) if t.number in val_of else t for t in trials]
        out["best_val_top10"] = {"template": rule.select(with_val)[0].template}
    ensemble = [t.template for t in top if t.template and not is_set_key(t.template)][:5]
    if len(ensemble) > 1 and callable(getattr(scorer, "score_ensemble", None)):
        out["ensemble_top5"] = {"template": " | ".join(ensemble),
                                "test": scorer.score_ensemble(ensemble, "test").value}
    tests = [(score_prompt(scorer, t.template or "", "test").value, t.template) for t in by_train]
    if tests:
        for name, best in (("oracle_top10", max(tests[:10])), ("oracle_all", max(tests))):
            out[name] = {"template": best[1], "test": best[0]}
    for pick in out.values():
        if "test" not in pick:
            pick["test"] = score_prompt(scorer, pick["template"], "test").value
    return out


def selection_study(spec: GridSpec, out: Path, methods: tuple[str, ...] = ("hill_climb",)) -> str:
    """Markdown: rows (method, rule), columns data sets x shots, mean ± std test accuracy over seeds."""
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    per_seed: dict[tuple[str, str], dict[tuple[str, int, str, int], float]] = defaultdict(dict)
    columns: list[str] = []
    for cell in cells(spec):
        if cell.method not in methods or not (cell_dir(out, cell) / STORE_FILE).exists():
            continue
        store = RunStore.open(cell_dir(out, cell))
        if not store.finished:
            store.close()
            continue
        picks = store.result("selection")
        if picks is None or not {"oracle_all", "best_train_ce", "best_train_sig"} <= set(picks):  # from before a rule
            picks = _picks(store, build_parts(cell_config(spec, cell)).scorer)
            store.set_result("selection", picks)
        store.close()
        col = f"{cell.task} {cell.shots}-shot"
        if col not in columns:
            columns.append(col)
        for rule, pick in picks.items():
            values[(cell.method, rule, col)].append(100 * pick["test"])
            per_seed[(cell.method, rule)][(cell.task, cell.shots, cell.scorer, cell.seed)] = 100 * pick["test"]
    lines = ["| method | rule | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    paired = _paired_by_rule(per_seed, methods)
    for method in methods:
        for rule in (*RULES, *ORACLES):
            cells_md = []
            for col in columns:
                vs = values.get((method, rule, col), [])
                cells_md.append(mean_std_cell(vs) if vs else "–")
            lines.append(f"| {method} | {rule} | " + " | ".join(cells_md) + " |")
    return "\n".join(lines) + ("\n\n" + paired if paired else "")


def _paired_by_rule(per_seed: dict[tuple[str, str], dict[tuple[str, int, str, int], float]],
                    methods: tuple[str, ...]) -> str:
    """The first method minus each other one, both choosing with the same rule, paired by
    (data set, shots, scorer, seed): does a rule change which method wins? The oracle rows pair
    what each search found (not a result anyone could choose). Then the first method with each
    rule minus each other one with the paper's rule."""
    if len(methods) < 2:
        return ""
    ref = methods[0]
    lines = ["| rule | comparison | pairs | mean diff (points) | 95% CI | wins/ties/losses |",
             "|---|---|---|---|---|---|"]
    rows = [(rule, f"{ref} − {other}", rule, other) for rule in (*RULES, *ORACLES) for other in methods[1:]]
    # A rule against the others as published (the paper's rule): does the rule make the method win?
    rows += [(rule, f"{ref} ({rule}) − {other} (best_train)", "best_train", other)
             for rule in RULES if rule != "best_train" for other in methods[1:]]
    for rule, label, other_rule, other in rows:
        mine, theirs = per_seed.get((ref, rule), {}), per_seed.get((other, other_rule), {})
        diffs = [v - theirs[k] for k, v in mine.items() if k in theirs]
        if not diffs:
            continue
        mean, lo, hi = t_interval(diffs)
        wins, losses = sum(d > 1e-9 for d in diffs), sum(d < -1e-9 for d in diffs)
        ci = "n/a" if np.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"
        lines.append(f"| {rule} | {label} | {len(diffs)} | {mean:+.2f} | {ci} | "
                     f"{wins}/{len(diffs) - wins - losses}/{losses} |")
    return "\n".join(lines)
