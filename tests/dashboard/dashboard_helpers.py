"""Dashboard test helpers: a run that the test itself drives trial by trial (a Study with the
scripted LLM and the fake scorer, asked and told here, so trials land while the page watches)."""

from __future__ import annotations

from pathlib import Path

from promptclimb.candidate import Trial
from promptclimb.proposers import build_method
from promptclimb.store import RunStore
from promptclimb.study import Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM

INJECTION = ("a bright clear close photo of the small {} <img src=x onerror=window.pwned=1> "
             "<script>window.pwned=2</script>")
REPLIES = ["a photo of a {}, a type of object.", INJECTION, "a bright photo of the {}."]


class LiveRun:
    """A hill-climbing run recorded one trial at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.scorer = FakeScorer()
        self.study = Study(store=RunStore.create(run_dir, {"method": "hill_climb", "task": "demo", "seed": 1,
                                                            "scorer": "fake", "llm": "scripted", "shots": 1}),
                           proposer=build_method("hill_climb", {"restarts": 1, "resets": 2, "iterations": 3}),
                           scorer=self.scorer, task=build_task("demo", shots=1, seed=1).info,
                           llm=ScriptedLLM(REPLIES), seed=1)

    def record(self, n: int = 1) -> list[Trial]:
        out = []
        for _ in range(n):
            proposal = self.study.ask()
            assert proposal is not None, "the run ended before the test expected"
            template = proposal.candidate.template if proposal.candidate else None
            score = self.scorer.score(template, "train") if template else None
            out.append(self.study.tell(proposal, score, None if template else proposal.error or "no candidate"))
        return out

    def record_until(self, template: str) -> Trial:
        for _ in range(200):
            trial = self.record()[0]
            if trial.template == template:
                return trial
        raise AssertionError(f"the run never proposed {template!r}")
