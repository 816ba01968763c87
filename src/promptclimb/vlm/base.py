"""The Scorer protocol: the black box the optimizer climbs on.

A scorer is bound to a task (its class names and splits): a template goes in, a Score comes out.
Nothing else about the VLM is visible to the optimizer. Scorers that can, also score an
ensemble of templates (mean of normalised text embeddings, as CLIP does) and prompt sets with
per-class descriptions (``PromptSetScorer``); ``score_prompt`` scores either kind of candidate and
``check_scorer`` says in one line, at setup, that a scorer cannot do what a method needs. Some also
score a template on some rows of a split only (``SubsetScorer``: what racing, racing.py, needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from promptclimb.candidate import Score
from promptclimb.prompt_set import PromptSet, parse_set_key

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
class PromptSetScorer(Scorer, Protocol):
    """Scores a prompt set as one classifier: per class, the mean of the normalised embeddings of
    its texts (templates x class name, plus the class's descriptions; see prompt_set.py)."""

    def score_set(self, prompt_set: PromptSet, split: str = "train") -> Score: ...


# What a method may need of its scorer beyond single templates, and how to say it cannot.
ENSEMBLES = "ensembles"
CLASS_TEXTS = "class_texts"
_NEEDS = {ENSEMBLES: "scores template ensembles", CLASS_TEXTS: "embeds per-class texts"}


def can_score(scorer: Scorer, need: str) -> bool:
    if need == ENSEMBLES:
        return isinstance(scorer, PromptSetScorer | EnsembleScorer)
    return isinstance(scorer, PromptSetScorer)


def check_scorer(scorer: Scorer, need: str | None, method: str) -> None:
    """One line at setup when the method needs what the scorer cannot do."""
    if need is not None and not can_score(scorer, need):
        raise ScorerConfigError(f"{method} needs a scorer that {_NEEDS[need]}; scorer {scorer.name} cannot "
                                "(use a zero-shot scorer such as conse or open_clip)")


def score_prompt(scorer: Scorer, prompt: str | PromptSet, split: str = "train") -> Score:
    """Score a plain template (or prompt) or a prompt set, given as itself or by its stored key."""
    found = prompt if isinstance(prompt, PromptSet) else parse_set_key(prompt)
    if found is None:
        return scorer.score(str(prompt), split)
    if found.is_plain:
        return scorer.score(found.templates[0], split)
    if isinstance(scorer, PromptSetScorer):
        return scorer.score_set(found, split)
    if not found.class_texts and isinstance(scorer, EnsembleScorer):
        return scorer.score_ensemble(found.templates, split)
    need = CLASS_TEXTS if found.class_texts else ENSEMBLES
    raise ScorerConfigError(f"a prompt set needs a scorer that {_NEEDS[need]}; scorer {scorer.name} cannot")


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
