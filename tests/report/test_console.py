"""The live progress line (report/console.py): where a trial came from, as a person reads it."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

from rich.console import Console

from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import PromptSet
from promptclimb.report.console import ConsoleProgress

RUN = SimpleNamespace(usage=SimpleNamespace(scorer_queries=3, scorer_images=30, llm_calls=1, llm_tokens=50),
                      budget=SimpleNamespace(scorer_queries=50, scorer_images=None))


def _where(trial: Trial) -> str:
    out = StringIO()
    ConsoleProgress(Console(file=out, width=300, color_system=None))(RUN, trial)
    return out.getvalue().split()[1]


def test_only_plain_templates_no_llm_call_wrote_are_shown_as_the_pool() -> None:
    described = PromptSet.of(["a photo of a {}."], {"cat": ["a small cat"]}).key
    assert _where(Trial(0, TrialState.COMPLETE, "a photo of a {}.", train_score=0.5)) == "pool"
    # describe's class step scores sets from an earlier reply without a new LLM call
    assert _where(Trial(1, TrialState.COMPLETE, described, train_score=0.5)) == "r0"
    assert _where(Trial(2, TrialState.COMPLETE, "a {} seen up close.", iteration=3, exchange_id=7,
                        train_score=0.5)) == "r0"
