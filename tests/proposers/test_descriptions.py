"""Reading "class: description" lines out of untrusted replies."""

from __future__ import annotations

from promptclimb.proposers.descriptions import parse_descriptions

NAMES = ("cat", "wild cat", 'the "{odd}" one', "type: A")


def test_lines_are_matched_to_the_longest_class_name() -> None:
    reply = ("1. Cat: a small cat with whiskers\n- **wild cat** - a wild cat in tall grass\n"
             "cat: a cat asleep on a sofa\nCat: a small cat with whiskers")
    parsed = parse_descriptions(reply, NAMES, NAMES)
    assert parsed.texts == {"cat": ["a small cat with whiskers", "a cat asleep on a sofa"],
                            "wild cat": ["a wild cat in tall grass"]}
    assert not parsed.rejections


def test_names_with_braces_quotes_and_colons_match_and_unnamed_descriptions_get_the_name() -> None:
    reply = 'the "{odd}" one: striped and round\ntype: A: a letter printed on paper'
    parsed = parse_descriptions(reply, NAMES, NAMES)
    assert parsed.texts == {'the "{odd}" one': ['the "{odd}" one: striped and round'],
                            "type: A": ["type: A: a letter printed on paper"]}


def test_no_class_wrong_class_and_bad_text_are_rejected_with_reasons() -> None:
    reply = "Sure! Here are some descriptions.\ndog: a dog\nwild cat: \u202eevil\ncat:   "
    parsed = parse_descriptions(reply, NAMES, ["cat", "wild cat"])
    assert parsed.texts == {}
    reasons = {r for _, r in parsed.rejections}
    assert "empty description" in reasons
    assert "a line that names no class of the task" in reasons
    assert any("right-to-left" in r for r in reasons)
    only_asked = parse_descriptions("cat: a cat\nwild cat: a wild cat", NAMES, ["wild cat"])
    assert only_asked.texts == {"wild cat": ["a wild cat"]}
    assert only_asked.rejections == (("cat: a cat", "a class not asked about: cat"),)


def test_at_most_limit_descriptions_a_class() -> None:
    reply = "\n".join(f"cat: a cat number {i}" for i in range(9))
    assert len(parse_descriptions(reply, NAMES, NAMES, limit=3).texts["cat"]) == 3
