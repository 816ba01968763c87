"""Class-level feedback: which classes a template gets most wrong and what they are taken for.

Built from a scorer's per-image outcomes (true and predicted class indices, which the zero-shot,
predictions-only and fake scorers report and the Study keeps in each trial's metrics), worded by
``meta_prompts/class_feedback.txt``: "lion: 2 of 5 right, mostly taken for tiger". GEPA's
reflective dataset uses it, and so does hill climbing with ``feedback = "classes"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptclimb.proposers.base import MetaPrompt


@dataclass(frozen=True)
class ClassOutcome:
    """One class over a set of images: how many, how many right, and its most common confusion."""

    name: str
    total: int
    right: int
    confused: str | None  # the class its wrong images are most often predicted as

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 0.0


def _name(index: int, class_names: Sequence[str]) -> str:
    return class_names[index] if 0 <= index < len(class_names) else "no class"


def class_outcomes(labels: Sequence[int], predictions: Sequence[int],
                   class_names: Sequence[str]) -> list[ClassOutcome]:
    """Per class present in ``labels``: worst accuracy first, then more images, then name."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    totals: Counter[int] = Counter(labels)
    right: Counter[int] = Counter(t for t, p in zip(labels, predictions, strict=True) if t == p)
    taken: dict[int, Counter[int]] = {}
    for t, p in zip(labels, predictions, strict=True):
        if t != p:
            taken.setdefault(t, Counter())[p] += 1
    out = []
    for label, total in totals.items():
        wrong = taken.get(label)
        # most_common breaks ties by first occurrence; sort first so the tie rule is the index.
        confused = min(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[0] if wrong else None
        out.append(ClassOutcome(_name(label, class_names), total, right[label],
                                None if confused is None else _name(confused, class_names)))
    return sorted(out, key=lambda c: (c.accuracy, -c.total, c.name))


def class_feedback(labels: Sequence[int], predictions: Sequence[int], class_names: Sequence[str],
                   worst: int = 3) -> str:
    """The ``worst`` classes with errors, one line each, or one line saying every class is right."""
    words = MetaPrompt.load("class_feedback")
    rows = [c for c in class_outcomes(labels, predictions, class_names) if c.right < c.total][:worst]
    if not rows:
        return words.render("all_right", total=len(labels))
    return "\n".join(words.render("class_confused", name=c.name, right=c.right, total=c.total,
                                  confused=c.confused) for c in rows)


def image_feedback(label: int | None, prediction: int | None, class_names: Sequence[str],
                   correct: bool = False, index: int = 0) -> str:
    """One image's outcome in words: right, or what it was taken for (or only right / wrong when
    the scorer reported no classes)."""
    words = MetaPrompt.load("class_feedback")
    if label is None or prediction is None:
        return words.render("image_right_plain" if correct else "image_wrong_plain", index=index)
    name = _name(label, class_names)
    if label == prediction:
        return words.render("image_right", name=name)
    return words.render("image_wrong", name=name, confused=_name(prediction, class_names))


def trial_outcomes(metrics: Mapping[str, Any]) -> tuple[list[int], list[int]] | None:
    """(labels, predictions) from a trial's metrics, or None when its scorer did not report them."""
    labels, preds = metrics.get("labels"), metrics.get("predictions")
    if not isinstance(labels, list) or not isinstance(preds, list) or len(labels) != len(preds):
        return None
    return [int(v) for v in labels], [int(v) for v in preds]


__all__ = ["ClassOutcome", "class_feedback", "class_outcomes", "image_feedback", "trial_outcomes"]
