"""Terminal output with rich: live progress of a run (iteration, best score, budget used) and
the tables of `promptclimb show`."""

from __future__ import annotations

from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import short_form
from promptclimb.proposers.base import format_score
from promptclimb.selection import BestTrainSelector, written_as_pool

_STATE_STYLE = {TrialState.COMPLETE: "green", TrialState.FAILED: "red", TrialState.DUPLICATE: "yellow"}
PRUNED = "pruned by racing"  # racing.py's error prefix: a failed trial shown as "pruned"


def _state(t: Trial) -> tuple[str, str]:
    """(label, style) of a trial's state; a candidate racing pruned is failed, shown as pruned."""
    if t.state is TrialState.FAILED and (t.error or "").startswith(PRUNED):
        return "pruned", "magenta"
    return t.state.value, _STATE_STYLE[t.state]


class Metered(Protocol):
    """What the progress line reads of a run: its usage and budget (a Study)."""

    @property
    def usage(self) -> Any: ...

    @property
    def budget(self) -> Any: ...


class ConsoleProgress:
    """A Study callback: one line per trial with the best score and the budget used so far."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.best: float | None = None

    def __call__(self, study: Metered, trial: Trial) -> None:
        if trial.state is TrialState.COMPLETE and trial.train_score is not None:
            self.best = max(self.best or 0.0, trial.train_score)
        u, b = study.usage, study.budget
        queries = f"{u.scorer_queries}" + (f"/{b.scorer_queries}" if b.scorer_queries else "")
        images = f"{u.scorer_images}" + (f"/{b.scorer_images}" if b.scorer_images else "")
        at_origin = not trial.restart + trial.reset + trial.iteration
        label, style = _state(trial)
        in_pool = written_as_pool(trial) and (trial.error is None or label == "pruned") and at_origin
        where = "pool" if in_pool else f"r{trial.restart} n{trial.reset} k{trial.iteration}"
        what = escape(short_form(trial.template, 80) or (trial.error or "")[:60])
        self.console.print(
            f"[dim]#{trial.number:<4}[/] {where:<11} [{style}]{label:<9}[/] "
            f"{format_score(trial.train_score):>6}  best {format_score(self.best):>6}  "
            f"[dim]queries {queries}  images {images}  llm {u.llm_calls} calls {u.llm_tokens} tok[/]  {what}",
            highlight=False, soft_wrap=True,
        )


def best_table(trials: list[Trial], k: int = 10) -> Table:
    table = Table(title="Best templates (train score; ties: val, margin, earlier)")
    for col in ("#", "template", "train", "val", "test"):
        table.add_column(col, justify="left" if col == "template" else "right")
    for t in BestTrainSelector().select(trials)[:k]:
        table.add_row(str(t.number), escape(short_form(t.template)), format_score(t.train_score),
                      format_score(t.val_score), format_score(t.test_score))
    return table


def history_table(trials: list[Trial]) -> Table:
    table = Table(title="History")
    for col in ("#", "restart", "reset", "iter", "state", "train", "template / error"):
        table.add_column(col, justify="left" if col.startswith(("template", "state")) else "right")
    for t in trials:
        label, style = _state(t)
        table.add_row(str(t.number), str(t.restart), str(t.reset), str(t.iteration),
                      f"[{style}]{label}[/]", format_score(t.train_score),
                      escape(short_form(t.template) or f"({t.error})"))
    return table


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(show_header=False, title="Run")
    for key, value in summary.items():
        if key.endswith("_score") and isinstance(value, float):
            value = format_score(value)
        table.add_row(key, escape(str(value)))
    return table
