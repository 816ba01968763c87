"""parse_candidates / parse_template on untrusted text: never crash, and whatever they accept
formats with any class name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptclimb.candidate import (
    MAX_TEMPLATE_CHARS,
    Candidate,
    CandidateRejected,
    parse_candidates,
    parse_template,
)

FRAGMENTS = ["{", "}", "{}", "{0}", "{1}", "{name}", "{class name}", "{{}}", "[CLASS]", "<label>", '"', "'",
             "`", "“", "”", "- ", "* ", "• ", "1. ", "2) ", "(a) ", "\n", "\r\n", " ", ",", ";", " | ", " / ",
             "a photo of a ", "template: ", "Sure! Here is a template: ", " (82.5%)", " -> 0.8", "score: 71",
             "x" * 200, "word " * 40, "\t", "\u200b", "%", "$", "\\"]
texts = st.one_of(
    st.text(),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=30).map("".join),
)


def _check(c: Candidate, name: str) -> None:
    assert c.template.count("{}") == 1
    assert len(c.template) <= MAX_TEMPLATE_CHARS
    filled = c.fill(name)
    assert filled == c.template.format(name)
    assert name in filled


@settings(max_examples=400, deadline=None, database=None)
@given(texts, st.text())
def test_parse_template_rejects_cleanly_and_accepted_templates_format(text: str, name: str) -> None:
    try:
        c = parse_template(text)
    except CandidateRejected as err:
        assert str(err)
        return
    _check(c, name)


@settings(max_examples=400, deadline=None, database=None)
@given(texts, st.text())
def test_parse_candidates_never_raises(text: str, name: str) -> None:
    result = parse_candidates(text)
    assert len(set(result.candidates)) == len(result.candidates)
    for c in result.candidates:
        _check(c, name)
    for line, reason in result.rejections:
        assert isinstance(line, str) and reason
    if not result.candidates:
        assert result.reason


@pytest.mark.parametrize(("text", "template"), [
    ("a photo of a {0}.", "a photo of a {}."),
    ("a photo of a {name}.", "a photo of a {}."),
    ("a photo of a {class name}.", "a photo of a {}."),
    ("a photo of a [CLASS].", "a photo of a {}."),
    ("a photo of a <label>.", "a photo of a {}."),
    ("- a photo of a {}.", "a photo of a {}."),
    ("* a photo of a {}.", "a photo of a {}."),
    ("3. a photo of a {}.", "a photo of a {}."),
    ("2) a photo of a {}.", "a photo of a {}."),
    ('"a photo of a {}."', "a photo of a {}."),
    ('1. "a close-up photo of a {}."', "a close-up photo of a {}."),
    ("“a photo of a {}.”", "a photo of a {}."),
    ("Template: a photo of a {}.", "a photo of a {}."),
    ("Sure! Here is a better template: a cropped photo of a {}.", "a cropped photo of a {}."),
    ("a photo of a {}. (82.5%)", "a photo of a {}."),
    ("a photo of a {}. -> 82%", "a photo of a {}."),
    ("a photo of a {}   in   the wild.", "a photo of a {} in the wild."),
    ("{}", "{}"),
])
def test_normalisation(text: str, template: str) -> None:
    assert parse_template(text) == Candidate(template)


def test_several_templates_on_one_line() -> None:
    got = parse_candidates('"a photo of a {}.", "a drawing of a {}."').candidates
    assert [c.template for c in got] == ["a photo of a {}.", "a drawing of a {}."]
    got = parse_candidates("a photo of a {}. | itap of a {}.").candidates
    assert [c.template for c in got] == ["a photo of a {}.", "itap of a {}."]


def test_reply_with_chatter_bullets_and_duplicates() -> None:
    reply = "Here are some ideas:\n1. a photo of a {}.\n2. a photo of a {}.\n- art of the {}.\nHope it helps!"
    result = parse_candidates(reply)
    assert [c.template for c in result.candidates] == ["a photo of a {}.", "art of the {}."]
    assert result.rejections == (("Here are some ideas:", "empty line"),
                                 ("Hope it helps!", "no {} placeholder for the class name"))
    assert parse_candidates(reply, limit=1).candidates == (Candidate("a photo of a {}."),)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty line"),
    ("a photo of a cat.", "no {} placeholder"),
    ("a {} and a {}.", "more than one {}"),
    ("a {} with a { brace", "stray or unbalanced braces"),
    ("a photo of a {} " + "very " * 40, "too long"),
    ("a " + "x" * 200 + " {}", "too long"),
    ("{} ...", "no words around the placeholder"),
    ("line one {}\nline two {}", "several lines"),
])
def test_rejections_have_reasons(text: str, reason: str) -> None:
    with pytest.raises(CandidateRejected, match=reason.replace("{", r"\{").replace("}", r"\}")):
        parse_template(text)


def test_candidate_itself_validates() -> None:
    with pytest.raises(CandidateRejected):
        Candidate("a {0} photo")
    with pytest.raises(CandidateRejected):
        Candidate("a {} photo of {}")
    assert Candidate("a {} photo").fill("{weird} class") == "a {weird} class photo"


def test_parse_candidates_of_nothing() -> None:
    assert parse_candidates("").candidates == ()
    assert parse_candidates("").reason == "empty reply"
