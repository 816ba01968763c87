"""The Scorer protocol: the black box the optimizer climbs on.

A scorer is bound to a task (its class names and splits): a template goes in, a Score comes out.
Nothing else about the VLM is visible to the optimizer. Scorers that can, also score an
ensemble of templates (mean of normalised text embeddings, as CLIP does), and score a template on
some rows of a split only (SubsetScorer: what racing, racing.py, needs).
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


@runtime_checkable
class SubsetScorer(Scorer, Protocol):
    """A scorer that scores a template on chosen rows of a split. Rows index ``split_labels``; a
    row already scored for a template is not asked of the black box again (its outcome is kept),
    so a later full ``score`` costs only the rows not yet scored."""

    def split_labels(self, split: str) -> tuple[int, ...]:
        """The true class of every row of the split, in row order (its length is the split's size)."""
        ...

    def score_rows(self, template: str, split: str, rows: Sequence[int]) -> Score:
        """The Score on these rows alone; per-item outcomes, labels and predictions in ``rows`` order."""
        ...
