"""`promptclimb report RUN`: one static HTML file (inline CSS, plots as data URIs, no script, no
server): the resolved config, the final template(s) against the baselines the run scored, the
budget curve, every conversation with the score of each suggestion, failed replies and why,
token counts and cost, and the section of the run's kind (kinds.py). LLM text is untrusted:
everything is escaped (report/html.py) and the page forbids any script."""

from __future__ import annotations

import json
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from promptclimb.candidate import Trial, TrialState
from promptclimb.evaluation import budget_curve
from promptclimb.kinds import kind_of
from promptclimb.prompt_set import is_set_key, short_form
from promptclimb.proposers.base import format_score
from promptclimb.references import reference_line
from promptclimb.report.html import CSP, CSS, png_data_url, table
from promptclimb.report.plots import plot_curves
from promptclimb.store import Exchange, RunStore, StoreError
from promptclimb.summary import best_trials, conversations, run_summary


def _curve(store: RunStore) -> str:

    curve = store.result("curve") or budget_curve(store)
    if not curve:
        return "<p>No scored trial.</p>"
    with tempfile.TemporaryDirectory() as tmp:
        c = store.config
        title = f"{c.get('method')} on {c.get('task')}, seed {c.get('seed')}"
        path = plot_curves({str(c.get("method", "run")): [curve]}, Path(tmp) / "c.png", title)
        return "<p>No scored trial.</p>" if path is None else f'<img alt="budget curve" src="{png_data_url(path)}">'


def _final(store: RunStore, trials: list[Trial], summary: dict[str, Any]) -> str:
    final = store.result("final") or {}
    oracle = store.result("oracle")
    ensemble = store.result("ensemble")
    rows = [["chosen (best on train)", short_form(final.get("template")) or "–", format_score(final.get("train_score")),
             format_score(final.get("val_score")), format_score(final.get("test_score"))]]
    references = summary.get("references") or []
    for r in references:
        rows.append([f"reference: {r['label']} (test scored after the run, report only)", r["template"],
                     format_score(r["train"]), "", format_score(r["test"])])
    pool = [t for t in trials if t.exchange_id is None and t.state is TrialState.COMPLETE
            and not is_set_key(t.template)]
    if pool and not references:  # a store from before references were scored
        b = best_trials(pool, 1)[0]
        rows.append(["best of the starting pool", short_form(b.template), format_score(b.train_score),
                     format_score(b.val_score), format_score(b.test_score)])
    shown = {r["template"] for r in references}
    for fixed in ("{}", "a photo of a {}."):
        t = next((t for t in trials if t.template == fixed and t.state is TrialState.COMPLETE), None)
        if t and fixed not in shown:
            rows.append([f'fixed "{fixed}"', fixed, format_score(t.train_score), format_score(t.val_score),
                         format_score(t.test_score)])
    if ensemble:
        rows.append([f"ensemble of top {len(ensemble['templates'])}", " | ".join(ensemble["templates"]),
                     format_score(ensemble["train_score"]), "n/a", format_score(ensemble["test_score"])])
    if oracle:
        rows.append([f"oracle: best on test among top {oracle['top_n']} (not selectable)", oracle["template"],
                     "", "", format_score(oracle["test_score"])])
    line = reference_line(summary)
    headline = f"<p><b>{escape(line)}</b></p>" if line else ""
    note = ("<p>Test accuracy is scored for the chosen template; the reference and oracle rows are scored on "
            "test after the run, for this report only. Test accuracy is never used to choose.</p>")
    return headline + table(["", "template", "train", "val", "test"], rows) + note


def _warnings(store: RunStore) -> str:
    items = store.result("warnings") or []
    return "".join(f'<p class="warn">warning: {escape(str(w))}</p>' for w in items)


def _message(role: str, content: str) -> str:
    return f'<div class="msg {escape(role)}"><div class="role">{escape(role)}</div><pre>{escape(content)}</pre></div>'


def _conversations(trials: list[Trial], exchanges: list[Exchange]) -> str:
    parts = []
    for restart, reset, ts, last in conversations(trials, exchanges):
        convo = ""
        if last is not None:
            convo = "".join(_message(m.role, m.content) for m in last.request.messages)
            if last.reply is not None:
                convo += _message("assistant", last.reply.text)
            if last.request.completion_prompt:
                convo += ("<details><summary>list-continuation form sent to completion models</summary>"
                          f"<pre>{escape(last.request.completion_prompt)}</pre></details>")
        rows = [[str(t.iteration), f'<span class="{t.state.value}">{t.state.value}</span>',
                 escape(short_form(t.template)), format_score(t.train_score), escape(t.error or ""),
                 f"<code>{escape(t.raw[:160])}</code>"] for t in ts]
        parts.append(f"<details><summary>restart {restart} · reset {reset} — {len(ts)} suggestions, best "
                     f"{format_score(max((t.train_score or 0) for t in ts))}</summary>"
                     + table(["iter", "state", "template", "train", "why failed", "raw reply"], rows, raw=True)
                     + convo + "</details>")
    return "".join(parts) or "<p>No LLM conversation (this method uses no LLM).</p>"


def render_run_report(run_dir: Path) -> str:
    store = RunStore.open(run_dir)
    try:
        trials, exchanges = store.trials(), store.exchanges()
        summary = run_summary(store)
        config = store.config
        errors = sum(e.error is not None for e in exchanges)
        cost = [["LLM calls", str(len(exchanges))], ["failed LLM calls", str(errors)],
                ["prompt tokens", str(sum(e.prompt_tokens for e in exchanges))],
                ["completion tokens", str(sum(e.completion_tokens for e in exchanges))],
                ["estimated cost (USD)", f"{summary['llm_cost_usd']:.4f}"],
                ["scorer queries", str(summary["scorer_queries"])],
                ["images scored", str(summary["scorer_images"])]]
        hist = [[str(t.number), t.state.value, short_form(t.template), format_score(t.train_score),
                 format_score(t.test_score), t.error or ""] for t in trials]
        extra = kind_of(config).report_section(store, run_dir)
        return f"""<!doctype html><html><head><meta charset="utf-8">{CSP}<title>promptclimb run report</title>
<style>{CSS}</style></head><body>
<h1>promptclimb run report: {escape(str(config.get('method')))} on {escape(str(config.get('task')))}</h1>
<p>{escape(str(run_dir))} · scorer <b>{escape(str(config.get('scorer')))}</b> · LLM
<b>{escape(str(config.get('llm')))}</b> · seed {escape(str(config.get('seed')))} ·
{'finished' if summary['finished'] else 'not finished'}</p>
{_warnings(store)}
<h2>Result</h2>{_final(store, trials, summary)}
<h2>Budget curve</h2>{_curve(store)}
<h2>Cost</h2>{table(["", ""], cost)}
{extra}
<h2>Conversations</h2>{_conversations(trials, exchanges)}
<h2>Every trial</h2>{table(["#", "state", "template", "train", "test", "error"], hist)}
<h2>Resolved config</h2><pre>{escape(json.dumps(config, indent=1))}</pre>
</body></html>"""
    finally:
        store.close()


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    if not run_dir.exists():
        raise StoreError(f"run directory {run_dir} does not exist: pass the --out of a run")
    html = render_run_report(run_dir)
    path = out or run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
