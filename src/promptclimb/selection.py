"""Choosing the final template(s) from a run's trials. Only train (and val) scores are used:
the test split is evaluated for what is chosen, never to choose.

The default rule is the paper's: best train accuracy. Ties (frequent: few-shot accuracy moves
in coarse steps) go to the higher val score when there is one, then the higher mean margin when
the scorer reports it, then the earlier trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from promptclimb.candidate import Trial, TrialState


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


class BestTrainSelector:
    """Best train score; ties -> val score -> mean margin -> earlier trial."""

    name = "best_train"

    def select(self, trials: Sequence[Trial]) -> list[Trial]:
        def key(t: Trial) -> tuple[float, float, float, int]:
            val = t.val_score if t.val_score is not None else -1.0
            margin = float(t.metrics.get("mean_margin", -1e9))
            return (-(t.train_score or 0.0), -val, -margin, t.number)

        return sorted(unique_complete(trials), key=key)


SELECTORS: dict[str, type[BestTrainSelector]] = {"best_train": BestTrainSelector}
