"""Reference templates scored on test after a run, for the report only: "a photo of a {}." and the
best of the starting pool, so a reader sees on test what the optimization bought over them. They
are scored once the final template is chosen and are never used to choose (the selection reads
trials; these are kept apart, under the store's "references" result)."""

from __future__ import annotations

from typing import Any

from promptclimb.candidate import Trial, TrialState
from promptclimb.selection import BestTrainSelector, pool_trials
from promptclimb.vlm.base import Scorer

PHOTO = "a photo of a {}."
POOL_BEST = "best of the starting pool"


def reference_templates(trials: list[Trial]) -> list[tuple[str, str, Trial | None]]:
    """(label, template, its trial if the run scored it): the fixed photo template, the pool's best."""
    scored = {t.template: t for t in trials if t.state is TrialState.COMPLETE and t.template}
    refs: list[tuple[str, str, Trial | None]] = [(PHOTO, PHOTO, scored.get(PHOTO))]
    pool = pool_trials(trials)
    if pool:
        best = BestTrainSelector().select(pool)[0]
        refs.append((POOL_BEST, best.template or "", best))
    return refs


def score_references(trials: list[Trial], scorer: Scorer, chosen: str | None,
                     chosen_test: float | None) -> list[dict[str, Any]]:
    """Each reference's train and test score (test scored now; the chosen template's test reused)."""
    out = []
    for label, template, trial in reference_templates(trials):
        try:
            train = trial.train_score if trial is not None else scorer.score(template, "train").value
            test = (chosen_test if template == chosen and chosen_test is not None
                    else scorer.score(template, "test").value)
        except Exception:  # report only: a reference the scorer cannot score is left out, the run stands
            continue
        out.append({"label": label, "template": template, "train": train, "test": test,
                    "is_chosen": template == chosen})
    return out


def reference_test(references: list[dict[str, Any]], label: str) -> float | None:
    """The test score of the reference with this label, if it was scored."""
    return next((r.get("test") for r in references if r["label"] == label), None)


def reference_line(summary: dict[str, Any]) -> str | None:
    """"chosen 53.2 vs 'a photo of a {}.' 48.1 on test (+5.1 points)", when both were scored."""
    chosen = summary.get("final_test_score")
    photo = next((r for r in summary.get("references") or [] if r["template"] == PHOTO), None)
    if chosen is None or photo is None or photo.get("test") is None:
        return None
    if photo.get("is_chosen"):
        return f"on test: the chosen template is {PHOTO!r} itself, {100 * chosen:.1f}"
    diff = 100 * (chosen - photo["test"])
    return (f"on test: chosen {100 * chosen:.1f} vs {PHOTO!r} {100 * photo['test']:.1f} ({diff:+.1f} points; "
            "the reference is scored after the run, for the report only)")
