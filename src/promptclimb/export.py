"""`promptclimb export RUN`: trials as CSV and JSON, LLM exchanges as JSONL (a transcript the
scripted LLM can replay), and the best templates as a text file other commands read
(``method_options.pool.path``, ``fixed`` templates, transfer evaluation)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from promptclimb.store import RunStore
from promptclimb.summary import best_trials, run_summary

TRIAL_FIELDS = ("number", "state", "template", "train_score", "val_score", "test_score", "restart",
                "reset", "iteration", "proposer", "error", "duplicate_of", "exchange_id", "raw",
                "started_at", "finished_at")


def export_run(store: RunStore, out: Path, top_k: int = 5) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    trials = store.trials()
    with (out / "trials.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, TRIAL_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for t in trials:
            writer.writerow({**asdict(t), "state": t.state.value})
    rows = [{**asdict(t), "state": t.state.value} for t in trials]
    (out / "trials.json").write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
    with (out / "exchanges.jsonl").open("w", encoding="utf-8") as f:
        for e in store.exchanges():
            f.write(json.dumps({
                "id": e.id, "request_key": e.key, "sample": e.sample, "model": e.model,
                "request": e.request.to_json(), "reply": e.reply.text if e.reply else None,
                "error": e.error, "prompt_tokens": e.prompt_tokens,
                "completion_tokens": e.completion_tokens, "cost_usd": e.cost_usd,
            }) + "\n")
    final = (store.result("final") or {}).get("template")
    best = [t.template for t in best_trials(trials, top_k) if t.template]
    if final in best:  # the chosen template first, then the runners-up
        best.remove(final)
    lines = ([final] if final else []) + best
    (out / "best_templates.txt").write_text("\n".join(lines[:top_k]) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(run_summary(store), indent=1), encoding="utf-8")
    return [out / n for n in ("trials.csv", "trials.json", "exchanges.jsonl", "best_templates.txt",
                              "summary.json")]
