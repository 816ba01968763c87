"""Class-level feedback: the counts and confusions against hand-worked cases, the words from the
meta-prompt file, and the per-image outcomes the scorers report and the Study keeps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from proposer_helpers import TASK

from promptclimb.proposers import build_method
from promptclimb.proposers.base import MetaPrompt
from promptclimb.proposers.class_feedback import class_feedback, class_outcomes, image_feedback, trial_outcomes
from promptclimb.store import RunStore
from promptclimb.study import Study
from promptclimb.testing import FakeScorer, ScriptedLLM
from promptclimb.vlm.zero_shot import accuracy_score

NAMES = ("lion", "tiger", "cat")


def test_worst_class_first_with_its_most_common_confusion() -> None:
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 1, 1, 1, 2, 2, 2, 2, 0]
    rows = class_outcomes(labels, preds, NAMES)
    assert [(r.name, r.right, r.total, r.confused) for r in rows] == [
        ("lion", 1, 3, "tiger"), ("tiger", 1, 2, "cat"), ("cat", 3, 4, "lion")]
    assert class_feedback(labels, preds, NAMES, worst=2).splitlines() == [
        "lion: 1 of 3 right, mostly taken for tiger", "tiger: 1 of 2 right, mostly taken for cat"]


def test_confusion_ties_go_to_the_lower_class_index_and_all_right_is_one_line() -> None:
    assert class_outcomes([2, 2], [1, 0], NAMES)[0].confused == "lion"
    assert class_feedback([0, 1], [0, 1], NAMES) == "every class right (2 images)"
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        class_outcomes([0, 1], [0], NAMES)


def test_the_words_come_from_the_meta_prompt_file() -> None:
    words = MetaPrompt.load("class_feedback")
    assert image_feedback(0, 2, NAMES) == words.render("image_wrong", name="lion", confused="cat")
    assert image_feedback(1, 1, NAMES) == "an image of tiger: classified right"
    assert image_feedback(None, None, NAMES, correct=False, index=4) == "image 4: classified wrong"
    assert image_feedback(0, -1, NAMES).endswith("taken for no class")


def test_zero_shot_scores_report_labels_predictions_and_cross_entropy() -> None:
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    weights = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    score = accuracy_score(feats, labels, weights, ("a", "b"))
    assert score.labels == (0, 1, 1) and score.predictions == (0, 1, 0)
    # by hand: logits x 100, softmax, minus log of the true class's probability, mean
    def nll(row: list[float], true: int) -> float:
        z = [100 * v for v in row]
        return -(z[true] - max(z) - math.log(sum(math.exp(v - max(z)) for v in z)))
    expected = (nll([1, 0], 0) + nll([0, 1], 1) + nll([0.8, 0.6], 1)) / 3
    assert score.metrics["cross_entropy"] == pytest.approx(expected, rel=1e-5)


def test_the_study_keeps_each_trials_outcomes_consistent_with_its_correctness(tmp_path: Path) -> None:
    study = Study(store=RunStore.create(tmp_path / "r", {}), proposer=build_method("best_of_pool"),
                  scorer=FakeScorer(), task=TASK, llm=ScriptedLLM([]), seed=1)
    study.optimize()
    for trial in RunStore.open(tmp_path / "r").trials():
        pairs = trial_outcomes(trial.metrics)
        assert pairs is not None
        bits = trial.metrics["per_item"]
        assert [int(a == b) for a, b in zip(*pairs, strict=True)] == [int(c) for c in bits]
        assert set(pairs[0]) == set(range(len(TASK.class_names)))
    assert trial_outcomes({"labels": [0, 1]}) is None
