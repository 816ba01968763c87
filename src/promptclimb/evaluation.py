"""Post-hoc evaluation of a run, after its loop has chosen: the test score of the pick, then, for
the report only, the reference templates, the top-k ensemble and the oracle (the best on test
among the top-N on train) on test, and the budget curve with the test score of each best-so-far.
Used by the run (run.py, through the Study's ``evaluation``) and by the bench. Nothing here is
ever used to choose: the test split only measures what the train split chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from promptclimb.candidate import Score, Trial, TrialState
from promptclimb.prompt_set import is_set_key
from promptclimb.racing import IMAGES_SCORED
from promptclimb.references import score_references
from promptclimb.selection import BestTrainSelector
from promptclimb.store import RunStore
from promptclimb.study import StudyResult
from promptclimb.vlm.base import EnsembleScorer, Scorer, score_prompt


@dataclass(frozen=True)
class PostHocEvaluation:
    """Scores a finished run's choice on test; ``ensemble_k``/``oracle_top_n`` add report rows."""

    scorer: Scorer
    ensemble_k: int = 0
    oracle_top_n: int = 0
    test: bool = True  # False: no test scoring at all (an ensemble is still scored on train)

    @property
    def on_test(self) -> bool:
        return self.test and "test" in self.scorer.splits()

    def evaluate(self, store: RunStore, result: StudyResult) -> StudyResult:
        best, trials = result.best, store.trials()
        test = self._test(best.template) if best is not None and best.template else None
        if best is not None and test is not None:
            store.set_test_score(best.number, test.value)
            best = best.with_(test_score=test.value)
            store.set_result("final", {**(store.result("final") or {}), "test_score": test.value,
                                       "test_per_class": dict(test.per_class) if test.per_class else None})
        if self.on_test and best is not None:
            store.set_result("references", score_references(
                trials, self.scorer, best.template, test.value if test else None))
        ranking = result.ranking
        if self.ensemble_k > 1 and len(ranking) > 1:
            singles = [t.template for t in ranking if t.template and not is_set_key(t.template)]
            self._ensemble(store, singles[: self.ensemble_k])
        if self.oracle_top_n > 0 and self.on_test:
            self._oracle(store, trials)
        return replace(result, best=best, test_score=test)

    def _test(self, template: str) -> Score | None:
        """A template's, or a prompt set's (by its key), test score."""
        return score_prompt(self.scorer, template, "test") if self.on_test else None

    def _ensemble(self, store: RunStore, templates: list[str]) -> None:
        """The top-k templates scored together (mean of text embeddings), where supported."""
        if not isinstance(self.scorer, EnsembleScorer):
            return
        train = self.scorer.score_ensemble(templates, "train")
        test = self.scorer.score_ensemble(templates, "test") if self.on_test else None
        store.set_result("ensemble", {"templates": templates, "train_score": train.value,
                                      "test_score": test.value if test else None})

    def _oracle(self, store: RunStore, trials: list[Trial]) -> None:
        """The best on test among the top-N on train, beside the chosen one, so the selection gap
        is visible. Never used to choose."""
        scored = []
        for t in BestTrainSelector().select(trials)[: self.oracle_top_n]:
            score = self._test(t.template or "")
            if score is not None:
                store.set_test_score(t.number, score.value)
                scored.append((score.value, -t.number, t))
        if scored:
            value, _, oracle = max(scored)
            store.set_result("oracle", {"template": oracle.template, "trial": oracle.number,
                                        "test_score": value, "top_n": self.oracle_top_n})


def budget_curve(store: RunStore, scorer: Any = None) -> list[dict[str, Any]]:
    """Best train score so far against scorer queries, images scored and LLM tokens, with the test accuracy of
    that best-so-far template scored after the run (post hoc: never used to choose; skipped
    without a scorer)."""
    tokens_by_id, total = {}, 0
    for e in store.exchanges():
        total += e.prompt_tokens + e.completion_tokens
        tokens_by_id[e.id] = total
    points: list[dict[str, Any]] = []
    queries, images, tokens, best, best_template = 0, 0, 0, None, None
    test_cache: dict[str, float | None] = {}
    for t in store.trials():
        queries += int(t.metrics.get("queries", 0))
        images += int(t.metrics.get(IMAGES_SCORED, 0))
        if t.exchange_id is not None:
            tokens = max(tokens, tokens_by_id.get(t.exchange_id, tokens))
        if t.state is TrialState.COMPLETE and t.train_score is not None and (best is None or t.train_score > best):
            best, best_template = t.train_score, t.template
            if best_template not in test_cache:
                test_cache[best_template or ""] = (score_prompt(scorer, best_template or "", "test").value
                                                   if scorer is not None and "test" in scorer.splits() else None)
        points.append({"queries": queries, "images": images, "tokens": tokens, "best_train": best,
                       "best_test": test_cache.get(best_template or ""), "template": best_template})
    return points
