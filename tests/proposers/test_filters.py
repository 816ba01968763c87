from __future__ import annotations

import pytest

from promptclimb.proposers.filters import degeneracy

SHOWN = ["a photo of a {}.", "a close-up photo of a {}."]


@pytest.mark.parametrize(("template", "reason"), [
    ("a a a a, {}, a a", "repeated words"),
    ("a photo photo of a {}.", "repeated words"),
    ("photo of {} in a photo with a photo", "repeated words"),
    ("xj3k 9s8d {} 7&&", "non-words"),
    ("a {} supercalifragilisticexpialidocious", "non-words"),
    ("A photo of a {}", "near-copy of 'a photo of a {}.'"),
    ("a photo of a {} .", "near-copy of 'a photo of a {}.'"),
])
def test_degenerate_templates_are_named(template: str, reason: str) -> None:
    assert degeneracy(template, SHOWN) == reason


@pytest.mark.parametrize("template", [
    "a photo of a {}.",                       # an exact copy is a duplicate, not degenerate
    "a photo of the {}.",                     # a one-word edit is a real hill-climbing step
    "a photo of a {}, a type of clothing.",   # function words may repeat
    "itap of a {}.",
    "{}",
    "a low resolution photo of the {}, taken outdoors.",
])
def test_real_templates_pass(template: str) -> None:
    assert degeneracy(template, SHOWN) is None


def test_degenerate_replies_are_never_scored_nor_shown_as_negatives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from promptclimb.proposers import build_method
    from promptclimb.store import RunStore
    from promptclimb.study import Study
    from promptclimb.tasks import build_task
    from promptclimb.testing import FakeScorer, ScriptedLLM

    llm = ScriptedLLM(["a a a a {} a a", "a sketch of a {}."])
    scorer = FakeScorer()
    study = Study(store=RunStore.create(tmp_path / "run", {}), scorer=scorer, llm=llm, seed=1,
                  proposer=build_method("hill_climb", {"restarts": 1, "resets": 2, "iterations": 1}),
                  task=build_task("demo", shots=1, seed=1).info)
    study.optimize()
    assert not [t for t, _ in scorer.calls if "a a a" in t]
    corrective = llm.requests[1].messages[-1].content
    assert '"a a a a {} a a" is not usable (repeated words)' in corrective
    # the second conversation's opening lists only real templates
    opening = llm.requests[2].messages[1].content
    assert "a a a" not in opening and "a sketch of a {}." in opening
