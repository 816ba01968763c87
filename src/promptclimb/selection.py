"""Choosing the final template(s) from a run's trials. Only train (and val) figures are used:
the test split is evaluated for what is chosen, never to choose.

Few-shot accuracy is a coarse, noisy objective (at 8 shots x 5 classes it moves in steps of
2.5 points and several templates tie at the top), so besides the paper's rule there are rules
that use more of what the scorer measured:

- ``best_train`` (the paper): best train accuracy; ties -> val -> mean margin -> earlier trial.
- ``best_val``: best score on a validation split held out from the shots (``score_val``).
- ``margin``: best mean margin of the true class over the best other class (a smooth
  objective; needs a scorer that exposes similarities, so not for predictions-only scorers).
- ``bootstrap``: the template most often best when the train images are resampled
  (the same resample for every template: paired), i.e. the one whose lead is least luck.
- ``best_train_ce``: best train accuracy; ties -> lower train cross-entropy (of softmax over
  CLIP-scaled cosines, as ProAPO's fitness; the open_clip, hf and conse scorers report it) ->
  val -> margin -> earlier trial. At 1 shot many templates tie on accuracy; cross-entropy
  separates them by how confidently right they are. Trials without it rank after those with it.
- ``best_train_sig``: the ``best_train`` pick only if it beats the starting pool's best template
  (the pool: trials written without an LLM call, plain templates) on the train images by a paired
  sign test: with ``w`` images the pick gets right and the pool's best wrong and ``l`` the reverse,
  ``w - l >= z * sqrt(w + l)``, ``z`` = 2 (one-sided, about 2 %; racing's test). Otherwise the
  pool's best stays first. A lead of one or two of ten images is not evidence: at 1 shot x 10
  classes it needs 4 wins and no loss. Without per-item outcomes it is ``best_train``.
- ``best_val_top10``: the 10 best on train, rescored on the val split once the loop is done (the
  Study does it: 10 more queries, beyond the search budget), and the best of them on val kept;
  ties keep the train order. Val is min(shots, 4) more labelled images a class, which ``best_train``
  never sees; without a val split it is ``best_train``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import is_set_key


class Selector(Protocol):
    name: str

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        """Complete trials, best first; the first is the final template."""
        ...


def unique_complete(trials: Sequence[Trial]) -> list[Trial]:
    seen: set[str] = set()
    out = []
    for t in trials:
        if t.state is TrialState.COMPLETE and t.template and t.template not in seen:
            seen.add(t.template)
            out.append(t)
    return out


def _margin(t: Trial) -> float:
    return float(t.metrics.get("mean_margin", -1e9))


def _cross_entropy(t: Trial) -> float:
    value = t.metrics.get("cross_entropy")
    return float(value) if isinstance(value, int | float) else float("inf")


def _val(t: Trial) -> float:
    return t.val_score if t.val_score is not None else -1.0


class _KeySelector:
    """Sort by a key; the subclasses differ only in the key."""

    name = ""
    key: Callable[[Trial], tuple[float, ...]]

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        return sorted(unique_complete(trials), key=self.key)


class BestTrainSelector(_KeySelector):
    name = "best_train"

    @staticmethod
    def key(t: Trial) -> tuple[float, ...]:
        return (-(t.train_score or 0.0), -_val(t), -_margin(t), t.number)


class BestValSelector(_KeySelector):
    name = "best_val"

    @staticmethod
    def key(t: Trial) -> tuple[float, ...]:
        return (-_val(t), -(t.train_score or 0.0), -_margin(t), t.number)


class BestTrainCrossEntropySelector(_KeySelector):
    name = "best_train_ce"

    @staticmethod
    def key(t: Trial) -> tuple[float, ...]:
        return (-(t.train_score or 0.0), _cross_entropy(t), -_val(t), -_margin(t), t.number)


class MarginSelector(_KeySelector):
    name = "margin"

    @staticmethod
    def key(t: Trial) -> tuple[float, ...]:
        return (-_margin(t), -(t.train_score or 0.0), t.number)


def written_as_pool(t: Trial) -> bool:
    """A plain template no LLM call wrote: a method's prompt sets (describe's class step scores
    some with no new call) are not the starting pool."""
    return t.exchange_id is None and not is_set_key(t.template)


def pool_trials(trials: Sequence[Trial]) -> list[Trial]:
    """The starting pool's complete plain templates."""
    return [t for t in trials if written_as_pool(t) and t.state is TrialState.COMPLETE and t.template]


def sign_test_z(mine: np.ndarray, theirs: np.ndarray) -> float:
    """Paired sign (McNemar) statistic of ``mine`` over ``theirs`` on the same items: (wins - losses)
    / sqrt(disagreements) for 0/1 outcomes; 0 when they never disagree."""
    d = mine - theirs
    spread = float(np.sqrt(d @ d))
    return float(d.sum()) / spread if spread > 0 else 0.0


def unpack_items(packed: object) -> np.ndarray | None:
    """Per-item outcomes as stored by the Study: a '0'/'1' string or a list of floats."""
    if isinstance(packed, str):
        return np.frombuffer(packed.encode(), dtype=np.uint8).astype(np.float64) - ord("0")
    if isinstance(packed, list):
        return np.asarray(packed, dtype=np.float64)
    return None


class BootstrapSelector:
    """Rank by the share of paired bootstrap resamples of the train images in which a template
    has the best accuracy (ties in a resample are shared). Trials without per-item outcomes
    rank after those with them, by train score."""

    name = "bootstrap"

    def __init__(self, n_boot: int = 500, seed: int = 0) -> None:
        self.n_boot = n_boot
        self.seed = seed

    def win_shares(self, trials: Sequence[Trial]) -> dict[int, float]:
        rows: list[tuple[Trial, np.ndarray]] = []
        for t in unique_complete(trials):
            items = unpack_items(t.metrics.get("per_item"))
            if items is not None:
                rows.append((t, items))
        if not rows or len({len(v) for _, v in rows}) != 1:
            return {}
        matrix = np.stack([v for _, v in rows])  # templates x items
        n = matrix.shape[1]
        rng = np.random.default_rng(self.seed)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=self.n_boot)  # resamples x items
        means = matrix @ weights.T  # templates x resamples (sums; same n in every column)
        best = means == means.max(axis=0, keepdims=True)
        shares = (best / best.sum(axis=0, keepdims=True)).mean(axis=1)
        return {t.number: float(s) for (t, _), s in zip(rows, shares, strict=True)}

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        shares = self.win_shares(trials)
        return sorted(unique_complete(trials), key=lambda t: (
            -shares.get(t.number, -1.0), -(t.train_score or 0.0), -_margin(t), t.number))


class SignificantLeadSelector:
    """``best_train_sig`` (the module docstring): the pool's best unless the pick's lead is significant."""

    name = "best_train_sig"

    def __init__(self, z: float = 2.0) -> None:
        self.z = z

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        ranked = BestTrainSelector().select(trials)
        pool = BestTrainSelector().select(pool_trials(trials))
        if not ranked or not pool or ranked[0].number == pool[0].number:
            return ranked
        mine = unpack_items(ranked[0].metrics.get("per_item"))
        theirs = unpack_items(pool[0].metrics.get("per_item"))
        if mine is None or theirs is None or len(mine) != len(theirs) or sign_test_z(mine, theirs) >= self.z:
            return ranked
        return [pool[0], *(t for t in ranked if t.number != pool[0].number)]


class BestValOfTopSelector:
    """``best_val_top10`` (the module docstring). ``needs_val`` names the trials to score on val
    before it selects (``Study.finish`` and the bench's selection study do); trials still without
    one keep their train rank after those with one."""

    name = "best_val_top10"

    def __init__(self, top: int = 10) -> None:
        self.val_top = top

    def needs_val(self, trials: Sequence[Trial]) -> list[Trial]:
        """The train top-n still without a val score."""
        return [t for t in BestTrainSelector().select(trials)[: self.val_top] if t.val_score is None]

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        ranked = BestTrainSelector().select(trials)
        head = sorted(enumerate(ranked[: self.val_top]),
                      key=lambda it: (it[1].val_score is None, -(it[1].val_score or 0.0), it[0]))
        return [t for _, t in head] + ranked[self.val_top:]


SELECTORS: dict[str, Callable[[], Selector]] = {
    "best_train": BestTrainSelector,
    "best_val": BestValSelector,
    "margin": MarginSelector,
    "bootstrap": BootstrapSelector,
    "best_train_ce": BestTrainCrossEntropySelector,
    "best_train_sig": SignificantLeadSelector,
    "best_val_top10": BestValOfTopSelector,
}


def build_selector(name: str) -> Selector:
    if name not in SELECTORS:
        raise ValueError(f"unknown selection rule {name!r}; known: {', '.join(sorted(SELECTORS))}")
    return SELECTORS[name]()
