"""The text-to-image section of `promptclimb report RUN`: the task, the chosen prompt and its image,
what images, judge and LLM cost, and every iteration side by side with the reference: the
image(s), the prompt, the judge's feedback and revised prompt, and the similarity. Images are
embedded as small base64 thumbnails (the HTML opens anywhere, with no server), each linking to
the full PNG in RUN/images/. Prompts and judge text are untrusted: everything is escaped."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from promptclimb.candidate import Trial, TrialState
from promptclimb.store import RunStore
from promptclimb.t2i.images import REFERENCE_FILE, thumbnail_data_url

CSS = """<style>.t2i img{width:160px;height:auto;border:1px solid #ccc;margin:1px;image-rendering:pixelated}
.t2i td{max-width:360px}.t2i .aspects{font-size:12px;color:#555;margin:0;padding-left:1.2em}
.t2i.big img{width:320px}</style>"""


def _img(run_dir: Path, rel: str, alt: str) -> str:
    path = run_dir / rel
    if not path.is_file():
        return f"<i>missing {escape(rel)}</i>"
    return f'<a href="{escape(rel)}"><img alt="{escape(alt)}" src="{thumbnail_data_url(path)}"></a>'


def _where(key: str, t: Trial) -> str:
    return "start" if key.startswith("pool/") else f"restart {t.restart} · reset {t.reset} · iteration {t.iteration}"


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(float(value))


def _feedback(t: Trial, first: Trial | None) -> str:
    if t.state is TrialState.FAILED:
        return f'<span class="failed">{escape(t.error or "failed")}</span>'
    m = (first or t).metrics
    note = "<i>same prompt as before</i><br>" if t.state is TrialState.DUPLICATE else ""
    aspects = m.get("aspects") or {}
    items = "".join(f"<li><b>{escape(str(k))}</b>: {escape(str(v))}</li>" for k, v in aspects.items())
    revised, drawn = m.get("revised_prompt"), m.get("provider_revised_prompt")
    if drawn and drawn != t.template:  # DALL-E 3 rewrites prompts before drawing
        note += f"<i>the generator drew:</i> {escape(str(drawn))}<br>"
    return (note + escape(str(m.get("feedback") or "")) + (f'<ul class="aspects">{items}</ul>' if items else "")
            + (f"<br><i>judge suggests:</i> {escape(str(revised))}" if revised else ""))


def _scores(t: Trial, first: Trial | None) -> str:
    m = (first or t).metrics
    if t.state is TrialState.FAILED:
        return "–"
    parts = [f"<b>similarity {_num(m.get('similarity'))}</b>"]
    parts += [f"{escape(k[len('similarity_'):])} {_num(v)}" for k, v in m.items() if k.startswith("similarity_")]
    parts.append(f"judge {_num(m.get('judge_score'), '{:g}')}/10")
    return "<br>".join(parts)


def _rows(store: RunStore, run_dir: Path, reference: str) -> str:
    stored = store.stored_trials()
    by_number = {st.trial.number: st.trial for st in stored}
    rows = []
    for key, t in ((st.key, st.trial) for st in stored):
        first = by_number.get(t.duplicate_of) if t.duplicate_of is not None else None
        images = (first or t).metrics.get("images") or []
        pics = "".join(_img(run_dir, rel, f"image of trial {t.number}") for rel in images) or "–"
        rows.append(f'<tr><td>{t.number}</td><td>{escape(_where(key, t))}<br><span class="{t.state.value}">'
                    f"{t.state.value}</span></td><td>{reference}</td><td>{pics}</td>"
                    f"<td>{escape(t.template or '')}</td><td>{_feedback(t, first)}</td>"
                    f"<td>{_scores(t, first)}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#", "step", "reference", "generated", "prompt", "judge's feedback",
                                               "similarity"))
    return f'<table class="t2i"><tr>{head}</tr>{"".join(rows)}</table>'


def _cost(store: RunStore) -> str:
    images, judge, llm = (store.calls(kind) for kind in ("image", "judge", "llm"))
    refusals = sum("refused the prompt" in (c.error or "") for c in images)
    rows = [("images generated", str(sum(c.units for c in images))),
            ("image calls (refused)", f"{len(images)} ({refusals})"),
            ("image cost (USD, estimated)", f"{sum(c.cost_usd or 0 for c in images):.4f}"),
            ("judge calls", str(len(judge))), ("judge tokens", str(sum(c.tokens for c in judge))),
            ("judge cost (USD, estimated)", f"{sum(c.cost_usd or 0 for c in judge):.4f}"),
            ("prompt-writing LLM calls", str(len(llm))),
            ("LLM cost (USD, estimated)", f"{sum(c.cost_usd or 0 for c in llm):.4f}")]
    return "<table>" + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows) + "</table>"


def render_section(store: RunStore, run_dir: Path) -> str:
    config = store.config
    kind = str(config.get("kind"))
    has_ref = (run_dir / REFERENCE_FILE).is_file()
    reference = _img(run_dir, REFERENCE_FILE, "reference image") if has_ref else \
        f"<i>intent:</i> {escape(str(config.get('intent') or ''))}"
    task_rows = [("task", kind), ("reference", config.get("reference")), ("intent", config.get("intent")),
                 ("edit", config.get("edit")), ("source prompt", config.get("source_prompt")),
                 ("source run", config.get("source_run"))]
    task = "".join(f"<tr><td>{k}</td><td>{escape(str(v))}</td></tr>" for k, v in task_rows if v)
    final = store.result("final") or {}
    best = next((t for t in store.trials() if t.number == final.get("trial")), None)
    chosen = "<p>No prompt has been chosen yet (the run is not finished).</p>"
    if best is not None:
        pics = "".join(_img(run_dir, rel, "chosen image") for rel in best.metrics.get("images") or [])
        chosen = (f'<table class="t2i big"><tr><th>reference</th><th>chosen prompt\'s image</th><th>prompt</th>'
                  f"<th>similarity</th></tr><tr><td>{reference}</td><td>{pics}</td><td>{escape(best.template or '')}"
                  f"</td><td>{_scores(best, None)}</td></tr></table>")
    return (f"{CSS}<h2>Text-to-image: {escape(kind)}</h2><table>{task}</table>"
            f"<h3>Chosen prompt</h3>{chosen}<h3>Images, judge and LLM</h3>{_cost(store)}"
            f"<h3>Every iteration</h3>{_rows(store, run_dir, reference)}")
