"""`promptclimb export RUN`: trials as CSV and JSON, LLM exchanges as JSONL (a transcript the
scripted LLM can replay), and the best templates as a text file other commands read
(``method_options.pool.path``, ``fixed`` templates, transfer evaluation). A chosen prompt set
(ensemble, descriptions) is written in full to best_prompt_set.json, and each set trial's
``prompt_set`` in trials.json; best_templates.txt keeps single templates only.

LLM text is untrusted: in the CSV, a text cell that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with ``'``.
The JSON files keep the exact text."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict
from pathlib import Path

from promptclimb.prompt_set import is_set_key, prompt_json
from promptclimb.store import RunStore
from promptclimb.summary import best_trials, run_summary

TRIAL_FIELDS = ("number", "state", "template", "train_score", "val_score", "test_score", "restart",
                "reset", "iteration", "proposer", "error", "duplicate_of", "exchange_id", "raw",
                "started_at", "finished_at")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?%?")


def csv_cell(value: object) -> object:
    """A value safe to open in a spreadsheet: text that would start a formula is quoted with '
    (a plain number such as -1.5 is left as it is)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return f"'{value}"
    return value


def export_run(store: RunStore, out: Path, top_k: int = 5) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    trials = store.trials()
    with (out / "trials.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, TRIAL_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for t in trials:
            writer.writerow({k: csv_cell(v) for k, v in {**asdict(t), "state": t.state.value}.items()})
    rows = [{**asdict(t), "state": t.state.value, "prompt_set": prompt_json(t.template)} for t in trials]
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
    paths = []
    if is_set_key(final):  # the chosen prompt set in full; best_templates.txt keeps single templates
        (out / "best_prompt_set.json").write_text(json.dumps(prompt_json(final), indent=1, ensure_ascii=False),
                                                  encoding="utf-8")
        paths.append(out / "best_prompt_set.json")
        final = None
    best = [t.template for t in best_trials(trials, top_k) if t.template and not is_set_key(t.template)]
    if final in best:  # the chosen template first, then the runners-up
        best.remove(final)
    lines = ([final] if final else []) + best
    (out / "best_templates.txt").write_text("\n".join(lines[:top_k]) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(run_summary(store), indent=1), encoding="utf-8")
    return [out / n for n in ("trials.csv", "trials.json", "exchanges.jsonl", "best_templates.txt",
                              "summary.json")] + paths
