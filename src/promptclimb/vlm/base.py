"""The Scorer protocol: the black box the optimizer climbs on.

A scorer is bound to a task (its class names and splits): a template goes in, a Score comes out.
Nothing else about the VLM is visible to the optimizer. Scorers that can, also score an
ensemble of templates (mean of normalised text embeddings, as CLIP does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from promptclimb.candidate import Score

SPLITS = ("train", "val", "test")


class ScorerError(RuntimeError):
    """Scoring one template failed; the trial is recorded as failed and the run goes on."""


class ScorerConfigError(ValueError):
    """Bad setup found before any work (missing data, unknown backbone, wrong layout)."""


@runtime_checkable
class Scorer(Protocol):
    name: str
    description: str

    def splits(self) -> tuple[str, ...]:
        """The splits this scorer can score on ("train" always; "val", "test" when present)."""
        ...

    def score(self, template: str, split: str = "train") -> Score: ...


@runtime_checkable
class EnsembleScorer(Scorer, Protocol):
    def score_ensemble(self, templates: Sequence[str], split: str = "train") -> Score: ...
