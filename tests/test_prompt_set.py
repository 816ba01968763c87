"""PromptSet: canonical keys (a plain template's key is the template), validation, short forms,
and how scorers score a set as one classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptclimb.candidate import CandidateRejected
from promptclimb.prompt_set import PromptSet, is_set_key, parse_set_key, prompt_json, short_form
from promptclimb.testing import FakeScorer
from promptclimb.vlm.base import (
    CLASS_TEXTS,
    ENSEMBLES,
    ScorerConfigError,
    can_score,
    check_scorer,
    score_prompt,
)
from promptclimb.vlm.zero_shot import build_set_weights, build_zero_shot_weights


def test_a_plain_template_is_keyed_by_itself() -> None:
    plain = PromptSet(("a photo of a {}.",))
    assert plain.is_plain and plain.key == "a photo of a {}." and not is_set_key(plain.key)
    assert parse_set_key(plain.key) is None and short_form(plain.key) == "a photo of a {}."


def test_keys_are_canonical_whatever_the_order() -> None:
    a = PromptSet(("b {}.", "a {}.", "a {}."), {"cat": ("a cat, striped", " a  cat,   small ")})
    b = PromptSet.of(["a {}.", "b {}."], {"cat": ["a cat, small", "a cat, striped"]})
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert a.templates == ("a {}.", "b {}.") and a.class_texts["cat"] == ("a cat, small", "a cat, striped")
    assert is_set_key(a.key) and parse_set_key(a.key) == a
    assert json.loads(a.key) == {"templates": ["a {}.", "b {}."],
                                 "class_texts": {"cat": ["a cat, small", "a cat, striped"]}}


def test_class_names_with_braces_and_quotes_survive_the_key() -> None:
    s = PromptSet(("a {}.",), {'the "{odd}" one': ("a {curly} thing",)})
    back = parse_set_key(s.key)
    assert back is not None and back.class_texts == {'the "{odd}" one': ("a {curly} thing",)}
    assert back.texts_for('the "{odd}" one') == ['a the "{odd}" one.', "a {curly} thing"]


@pytest.mark.parametrize("bad", [(), ("no slot",), ("two {} {}",)])
def test_bad_templates_are_rejected(bad: tuple[str, ...]) -> None:
    with pytest.raises(CandidateRejected):
        PromptSet(bad)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 400, "evil \u202e mark", "bell \x07"])
def test_bad_descriptions_are_rejected(bad: str) -> None:
    with pytest.raises(CandidateRejected):
        PromptSet(("a {}.",), {"cat": (bad,)})


def test_each_combine_mode_gives_its_texts_and_its_own_key() -> None:
    beside = PromptSet(("a {}.", "big {}."), {"cat": ("a cat with a face",)})
    assert "combine" not in json.loads(beside.key)  # sets stored before the modes keep their keys
    assert beside.texts_for("cat") == ["a cat.", "big cat.", "a cat with a face"]
    only = PromptSet(beside.templates, beside.class_texts, "descriptions")
    assert only.texts_for("cat") == ["a cat with a face"]
    product = PromptSet.from_json({**beside.to_json(), "combine": "product"})
    assert product.texts_for("cat") == ["a cat. a cat with a face", "big cat. a cat with a face"]
    assert product.texts_for("cat", fill=False) == ["a {}. a cat with a face", "big {}. a cat with a face"]
    for s in (only, product):
        assert s.texts_for("dog") == ["a dog.", "big dog."]  # no descriptions: the templates, in any mode
        assert parse_set_key(s.key) == s and s != beside and s.with_texts({"dog": ["a dog"]}).combine == s.combine
    assert short_form(product.key).endswith("descriptions for 1 class (template x descriptions)")
    assert PromptSet(("a {}.", "b {}."), combine="product") == PromptSet(("a {}.", "b {}."))  # nothing to combine
    with pytest.raises(CandidateRejected, match="combine must be one of"):
        PromptSet(("a {}.",), {"cat": ("a cat",)}, "mean")


def test_short_forms() -> None:
    ens = PromptSet(("a {}.", "a photo of a {}.", "art of the {}."))
    assert short_form(ens.key) == "ensemble of 3: a photo of a {}. | a {}. | art of the {}."  # sorted
    desc = PromptSet(("a photo of a {}.",), {f"c{i}": ("a thing",) for i in range(10)})
    assert short_form(desc.key) == "a photo of a {}. + descriptions for 10 classes"
    assert prompt_json(desc.key) == desc.to_json() and prompt_json("a {}.") is None
    assert len(short_form(PromptSet(tuple(f"a {'x' * 30} {n} {{}}." for n in "abcdef")).key, 60)) == 60


def test_fake_scorer_scores_a_plain_set_as_its_template_and_a_set_as_one_classifier() -> None:
    scorer = FakeScorer(class_names=("cat", "dog"))
    assert score_prompt(scorer, PromptSet(("a photo of a {}.",))) == scorer.score("a photo of a {}.")
    ens = PromptSet(("a photo of a {}.", "a sketch of a {}.", "art of the {}."))
    s = score_prompt(scorer, ens.key)
    assert scorer.calls[-1] == (ens.key, "train")  # one scoring, logged by the set's key
    assert s == scorer.score_set(ens) and s != scorer.score("a photo of a {}.")
    with pytest.raises(Exception, match="classes the task does not have: lion"):
        scorer.score_set(PromptSet(("a {}.",), {"lion": ("a big cat",)}))


class _PlainScorer:
    name = "plain"
    description = "scores single templates only"

    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def score(self, template: str, split: str = "train") -> object:
        raise AssertionError("not reached")


def test_a_scorer_that_cannot_is_told_in_one_line() -> None:
    plain = _PlainScorer()
    assert not can_score(plain, ENSEMBLES) and not can_score(plain, CLASS_TEXTS)  # type: ignore[arg-type]
    assert can_score(FakeScorer(), CLASS_TEXTS)
    with pytest.raises(ScorerConfigError, match=r"^describe needs a scorer that embeds per-class texts; "
                                                r"scorer plain cannot"):
        check_scorer(plain, CLASS_TEXTS, "describe")  # type: ignore[arg-type]
    check_scorer(plain, None, "hill_climb")  # type: ignore[arg-type]
    with pytest.raises(ScorerConfigError, match="scorer plain cannot"):
        score_prompt(plain, PromptSet(("a {}.", "b {}.")))  # type: ignore[arg-type]


def _encode(texts: list[str]) -> np.ndarray:
    """A toy text encoder: letter counts."""
    return np.array([[t.count(c) + 0.1 for c in "abcdefghij"] for t in texts], dtype=np.float32)


def test_set_weights_are_the_mean_of_every_text_of_a_class() -> None:
    names = ["cat", "dog"]
    ens = PromptSet(("a {}.", "big {}."))
    plain = build_zero_shot_weights(_encode, names, ens.templates)
    assert np.allclose(build_set_weights(_encode, names, ens), plain, atol=1e-6)
    desc = ens.with_texts({"cat": ["a cat with a face"]})
    w = build_set_weights(_encode, names, desc)
    texts = ["a cat.", "big cat.", "a cat with a face"]
    unit = _encode(texts) / np.linalg.norm(_encode(texts), axis=1, keepdims=True)
    mean = unit.mean(axis=0)
    assert np.allclose(w[0], mean / np.linalg.norm(mean), atol=1e-6)
    assert np.allclose(w[1], plain[1], atol=1e-6)  # a class without descriptions keeps the templates
    for mode, cat_texts in [("descriptions", ["a cat with a face"]),
                            ("product", ["a cat. a cat with a face", "big cat. a cat with a face"])]:
        w = build_set_weights(_encode, names, PromptSet(desc.templates, desc.class_texts, mode))
        unit = _encode(cat_texts) / np.linalg.norm(_encode(cat_texts), axis=1, keepdims=True)
        assert np.allclose(w[0], unit.mean(axis=0) / np.linalg.norm(unit.mean(axis=0)), atol=1e-6)
        assert np.allclose(w[1], plain[1], atol=1e-6)


def test_without_texts_puts_those_classes_back_to_the_templates_alone() -> None:
    full = PromptSet.of(["a photo of a {}."], {"cat": ["a striped cat"], "dog": ["a dog with a leash"]},
                        combine="descriptions")
    assert full.without_texts(["cat"]) == PromptSet.of(["a photo of a {}."], {"dog": ["a dog with a leash"]},
                                                       combine="descriptions")
    assert full.without_texts(["cat"]).texts_for("cat") == ["a photo of a cat."]
    assert full.without_texts(["cat", "dog"]).key == "a photo of a {}."  # the plain template again
    assert full.without_texts(["lion"]) == full
