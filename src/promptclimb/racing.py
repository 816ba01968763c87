"""Racing: successive halving of a new candidate's scoring, for any method (the Study's scoring path).

A new candidate is first scored on a minibatch of the train images, then on a doubled subset, and
so on up to the whole train split, only while it can still reach the current top-k:

- The rungs are ``m, 2m, 4m, ...`` images, then the whole split (``n`` images). They are prefixes
  of one order of the train rows, so each subset holds the one before (nested), and the order is
  fixed by the run seed (a resumed run races on the same images). The order is class-interleaved:
  each class's rows shuffled (seeded by seed and class), then taken one a class in turn, so a
  prefix of ``j * n_classes`` rows holds ``j`` images of every class.
- ``m`` (``racing.minibatch``) defaults to ``n_classes * ceil(n / (8 * n_classes))``: at least one
  image a class (a template often fails on one class), and about 1/8 of the split, so at most four
  rungs (16 shots: 2, 4, 8, 16 a class) and a clearly bad candidate costs about 1/8 of a scoring.
  At 1 to 8 shots ``m`` is one image a class (1 shot: ``m = n``, racing changes nothing).
- At each rung below the full split the candidate is compared, paired on the same images, with
  the k-th best fully scored template (``racing.top_k``, default 3) of what its stream sees (the
  pool and its own trials), whose per-image outcomes are stored with its trial, so that costs no
  query. With ``d_i`` = candidate minus k-th best on image i of the subset (``s`` images), the
  candidate goes on while ``mean(candidate) + slack >= mean(kth)``, where
  ``slack = z * sqrt(sum(d_i ** 2)) / s`` and ``z`` = ``racing.z`` (default 2.0). For correctness
  bits ``sum(d_i ** 2)`` is the number of images on which the two disagree, and this is the sign
  (McNemar) test: a candidate is pruned only when it loses more of the disagreements than 2
  standard deviations of an even split, about a 2% chance per rung for one as good as the k-th.
- Until k templates are fully scored, every candidate is scored on the whole split.
- Racing races plain templates only: a prompt set (an ensemble, or templates with per-class
  descriptions; prompt_set.py) is scored on the whole split by ``score_prompt`` even when racing
  is on, its images counted as the whole split, and it is not one of the top-k a template races.
- A pruned candidate is recorded as a failed trial whose error says ``pruned by racing at s/n
  images`` (``is_pruned``), with its rungs in ``metrics["racing"]``: it is never selected, never
  the template a later duplicate points to, and its images are counted. Proposed again, it races
  again (and is charged again). Hill climbing tells the LLM it scored lower and was stopped early.

Cost: the scorer keeps what it scored (SubsetScorer), so each rung costs its new images only: a
pruned candidate costs ``s`` images, a promoted one ``n``, as without racing. A trial starts only
when the image budget can pay for its whole scoring. A method's query count is unchanged (one
query per candidate scored on train, however far it raced). ask/tell callers score themselves.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from promptclimb.candidate import Score, Trial, TrialState
from promptclimb.config import ConfigError, RacingConfig
from promptclimb.prompt_set import is_set_key
from promptclimb.selection import unpack_items
from promptclimb.vlm.base import Scorer, SubsetScorer

FRACTION = 8  # the first rung is about 1/FRACTION of the train split
IMAGES_SCORED = "images_scored"  # every trial's metric: the images its scoring cost (train + val)
PRUNED = "pruned by racing"  # the trial's error begins so (report/console.py shows it as "pruned")


def is_pruned(trial: Trial) -> bool:
    return trial.state is TrialState.FAILED and (trial.error or "").startswith(PRUNED)


def default_minibatch(n: int, n_classes: int) -> int:
    return min(n, n_classes * math.ceil(n / (FRACTION * max(1, n_classes))))


def rung_sizes(minibatch: int, n: int) -> list[int]:
    """m, 2m, 4m, ... below n, then n."""
    sizes, size = [], minibatch
    while size < n:
        sizes.append(size)
        size *= 2
    return [*sizes, n]


def interleaved_order(labels: Sequence[int], seed: int) -> list[int]:
    """Rows shuffled within each class (seeded), then taken one a class in turn."""
    by_class: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(row)
    queues = []
    for label in sorted(by_class):
        rows = by_class[label]
        random.Random(f"racing/{seed}/{label}").shuffle(rows)
        queues.append(rows)
    random.Random(f"racing/{seed}/classes").shuffle(queues)
    out: list[int] = []
    for j in range(max(map(len, queues), default=0)):
        out.extend(q[j] for q in queues if j < len(q))
    return out


@dataclass(frozen=True)
class RaceOutcome:
    score: Score | None  # the full train score; None when pruned
    images: int  # train images this candidate cost
    rungs: list[dict[str, Any]] = field(default_factory=list)  # each comparison made
    pruned: str | None = None  # the trial's error when pruned

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"racing": self.rungs}
        if self.pruned is not None:
            out.update({"queries": 1, IMAGES_SCORED: self.images})
        return out


class Racing:
    """The rule of the module docstring over one scorer's train split."""

    def __init__(self, scorer: SubsetScorer, seed: int, minibatch: int | None = None, top_k: int = 3,
                 z: float = 2.0) -> None:
        labels = scorer.split_labels("train")
        self.n = len(labels)
        m = default_minibatch(self.n, len(set(labels))) if minibatch is None else minibatch
        if m < 1:
            raise ConfigError(f"racing.minibatch={m} must be at least 1 image")
        if m > self.n:
            raise ConfigError(f"racing.minibatch={m} but the train split has {self.n} images")
        self.scorer, self.minibatch, self.top_k, self.z = scorer, m, top_k, z
        self.order = np.asarray(interleaved_order(labels, seed), dtype=np.int64)
        self.sizes = rung_sizes(m, self.n)

    def kth_best(self, history: Sequence[Trial]) -> np.ndarray | None:
        """Per-image outcomes of the k-th best fully scored plain template, or None (fewer than k)."""
        seen: set[str] = set()
        full = []
        for t in history:
            items = unpack_items(t.metrics.get("per_item"))
            if t.state is TrialState.COMPLETE and t.template and t.template not in seen and items is not None \
                    and not is_set_key(t.template) and len(items) == self.n and t.train_score is not None:
                seen.add(t.template)
                full.append((-t.train_score, t.number, items))
        full.sort(key=lambda row: row[:2])
        return full[self.top_k - 1][2] if len(full) >= self.top_k else None

    def race(self, template: str, history: Sequence[Trial]) -> RaceOutcome:
        kth = self.kth_best(history)
        rungs: list[dict[str, Any]] = []
        for size in self.sizes[:-1]:
            if kth is None:
                break
            rows = self.order[:size]
            mine = np.asarray(self.scorer.score_rows(template, "train", rows.tolist()).per_item, dtype=np.float64)
            theirs = kth[rows]
            d = mine - theirs
            slack = self.z * math.sqrt(float(d @ d)) / size
            rung = {"images": size, "score": round(float(mine.mean()), 6),
                    "kth": round(float(theirs.mean()), 6), "slack": round(slack, 6)}
            rungs.append(rung)
            if mine.mean() + slack < theirs.mean():
                return RaceOutcome(None, size, rungs, f"{PRUNED} at {size}/{self.n} images: {mine.mean():.3f} "
                                   f"on them vs {theirs.mean():.3f} for the top-{self.top_k} cut "
                                   f"(slack {slack:.3f})")
        return RaceOutcome(self.scorer.score(template, "train"), self.n, rungs)


def build_racing(config: RacingConfig, scorer: Scorer, seed: int) -> Racing | None:
    """The run's racing, or None when off; one line if the scorer or the minibatch cannot race."""
    if not config.enabled:
        return None
    if not isinstance(scorer, SubsetScorer):
        raise ConfigError(f"racing needs a scorer that scores some of the train images; {scorer.name} "
                          "cannot: set racing.enabled=false or use another scorer")
    return Racing(scorer, seed, config.minibatch, config.top_k, config.z)
