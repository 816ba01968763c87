"""Shared helpers: run a method through a real Study on a real RunStore, with a ScriptedLLM and a
FakeScorer, and recompute the expected scores independently of the proposer code."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptclimb.candidate import Trial
from promptclimb.llm.base import ChatRequest
from promptclimb.proposers import build_method
from promptclimb.proposers.base import generic_templates
from promptclimb.store import RunStore, StoredTrial
from promptclimb.study import Budget, Study, StudyResult
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM

TASK = build_task("demo", shots=1, seed=1).info

# Fresh templates no pool holds and none a near-copy of another (the degenerate filter passes them).
_ADJ = ("vivid", "blurry", "tiny", "huge", "dark", "sunny", "rainy", "snowy", "quiet", "crowded", "busy",
        "empty")
_NOUN = ("photo", "picture", "sketch", "painting", "snapshot", "illustration")
FRESH = [f"a {a} {b} of the {{}}." for a in _ADJ for b in _NOUN]
# The default starting pool: the demo task's hand-written templates topped up from the generic list.
POOL = list(dict.fromkeys((*TASK.handwritten_templates, *generic_templates())))[:20]


def score(template: str) -> float:
    """What the FakeScorer gives on train (deterministic hash)."""
    return FakeScorer().score(template, "train").value


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


@dataclass
class Run:
    study: Study
    llm: ScriptedLLM
    scorer: FakeScorer
    result: StudyResult

    @property
    def requests(self) -> list[ChatRequest]:
        return self.llm.requests

    @property
    def stored(self) -> list[StoredTrial]:
        return self.study.store.stored_trials()

    def trials(self) -> list[Trial]:
        return self.study.trials()

    def pool(self) -> list[Trial]:
        return [s.trial for s in self.stored if s.key.startswith("pool/")]

    def by_key(self, key: str) -> Trial:
        return next(s.trial for s in self.stored if s.key == key)

    def scored_train(self) -> list[str]:
        return [t for t, split in self.scorer.calls if split == "train"]


def user_text(request: ChatRequest, index: int = -1) -> str:
    return [m.content for m in request.messages if m.role == "user"][index]


RunMethod = Callable[..., Run]


@pytest.fixture
def run_method(tmp_path: Path) -> RunMethod:
    counter = itertools.count()

    def run(method: str, options: dict[str, Any] | None = None,
            replies: Sequence[str] | Callable[[ChatRequest], str] = (),
            budget: Budget | None = None, seed: int = 1) -> Run:
        llm = ScriptedLLM(replies if callable(replies) else list(replies))
        scorer = FakeScorer()
        study = Study(store=RunStore.create(tmp_path / f"run{next(counter)}", {}),
                      proposer=build_method(method, options or {}), scorer=scorer, task=TASK, llm=llm,
                      seed=seed, budget=budget)
        return Run(study, llm, scorer, study.optimize())

    return run
