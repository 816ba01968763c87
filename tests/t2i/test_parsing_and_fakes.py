"""The pure pieces: the toy picture world the test server draws and judges with, the histogram
backbone, and the parsers for untrusted replies (judge JSON, LLM prompts)."""

from __future__ import annotations

import itertools
import json

import pytest

from promptclimb.candidate import CandidateRejected
from promptclimb.t2i.base import parse_json_object, parse_verdict
from promptclimb.t2i.fake import (
    COLOURS,
    SHAPES,
    HistogramSimilarity,
    Scene,
    apply_edit,
    draw,
    draw_prompt,
    parse_scene,
    read_scene,
    rule_verdict,
    toy_judge_reply,
)
from promptclimb.t2i.pricing import image_price
from promptclimb.t2i.proposer import MAX_PROMPT_CHARS, PromptCandidate, parse_prompt


@pytest.mark.parametrize(("shape", "colour", "background"),
                         [(s, c, b) for s, (c, b) in itertools.product(SHAPES, [("red", "blue"), ("yellow", "black"),
                                                                               ("green", "white")])])
def test_pictures_read_back_as_drawn(shape: str, colour: str, background: str) -> None:
    scene = Scene(shape, colour, background)
    assert read_scene(draw(scene, 80)) == scene
    assert parse_scene(scene.describe()) == scene


def test_words_make_scenes() -> None:
    assert parse_scene("A Gray TRIANGLE, on pink!") == Scene("triangle", "grey", "pink")
    assert parse_scene("just purple") == Scene(None, None, "purple")
    assert read_scene(draw_prompt("nothing at all")) == Scene(None, None, "white")
    assert apply_edit(Scene("circle", "blue", "yellow"), "make the circle green") == Scene("circle", "green", "yellow")
    assert apply_edit(Scene("circle", "blue", "yellow"), "put it on a red background") == Scene("circle", "blue", "red")
    assert set(COLOURS) >= {"red", "blue", "yellow"}


def test_histogram_similarity_orders_pictures() -> None:
    sim = HistogramSimilarity()
    ref = draw_prompt("a blue circle on a yellow background")
    same, close, far = (draw_prompt(p) for p in (
        "a blue circle on a yellow background", "a green circle on a yellow background", "a red square on a black one"))
    assert sim.image_image(ref, same) == pytest.approx(1.0)
    assert 0.3 < sim.image_image(ref, close) < 0.9
    assert sim.image_image(ref, far) == pytest.approx(0.0)
    assert sim.image_text(ref, "a blue circle on a yellow background") == pytest.approx(1.0)


def test_rule_judge_says_what_is_wrong_and_how_to_fix_it() -> None:
    verdict = rule_verdict(draw_prompt("a circle"), Scene("circle", "blue", "yellow"))
    assert verdict["matches"] is False and verdict["score"] == pytest.approx(3.3)
    assert "shape is grey, should be blue" in verdict["feedback"]
    assert verdict["revised_prompt"] == "a blue circle on a yellow background"
    assert rule_verdict(draw_prompt("a blue circle on a yellow background"),
                        Scene("circle", "blue", "yellow"))["matches"] is True


def test_toy_judge_reads_the_request_text_and_labels() -> None:
    ref = draw_prompt("a red triangle on a white background")
    described = json.loads(toy_judge_reply("Reference image:\n", [("Reference image:", ref)]))
    assert described == {"prompt": "a triangle"}
    edited = json.loads(toy_judge_reply("Prompt: a red triangle\nEdit: make it blue", [("Reference image:", ref)]))
    assert edited == {"prompt": "a red triangle, make it blue"}
    square = draw_prompt("a blue square")
    reply = json.loads(toy_judge_reply("Intent: a blue square\n", [("Generated image 1:", square)]))
    assert reply["matches"] is True and reply["score"] == 10


@pytest.mark.parametrize(("text", "expected"), [
    ('{"prompt": "a fox"}', {"prompt": "a fox"}),
    ('Sure!\n```json\n{"score": 7, "feedback": "ok"}\n```', {"score": 7, "feedback": "ok"}),
    ('The verdict: {"a": {"b": 1}} and {"c": 2}', {"a": {"b": 1}}),
    ("no json here {not json}", None),
    ("[1, 2]", None),
])
def test_json_objects_are_found_in_replies(text: str, expected: dict | None) -> None:
    assert parse_json_object(text) == expected


def test_verdicts_from_untrusted_replies() -> None:
    v = parse_verdict('{"score": "15", "matches": "yes", "aspects": {"subject": 3}, "feedback": " blurry ",'
                      ' "revised_prompt": "a  sharp\\n fox"}')
    assert v.score == 10.0 and v.matches is None and v.aspects == {"subject": "3"}
    assert v.feedback == "blurry" and v.revised_prompt == "a sharp fox"
    prose = parse_verdict("The fox is too small; make it bigger.")
    assert prose.feedback.startswith("The fox") and prose.revised_prompt is None and prose.score is None
    assert parse_verdict('{"score": "high"}').score is None


@pytest.mark.parametrize(("reply", "prompt"), [
    ("a red fox in the snow, golden hour", "a red fox in the snow, golden hour"),
    ('Here is an improved prompt:\n\n"A red fox, watercolour"', "A red fox, watercolour"),
    ("**Revised prompt:** a fox at dawn", "a fox at dawn"),
    ('{"prompt": "a fox, 35mm photo"}', "a fox, 35mm photo"),
    ("1. a small fox\n2. a big fox", "a small fox"),
    ("```\na fox {with braces}\n```", "a fox {with braces}"),
])
def test_prompts_are_parsed_from_llm_replies(reply: str, prompt: str) -> None:
    cand, why = parse_prompt(reply)
    assert cand is not None and cand.template == prompt, why


def test_unusable_replies_give_a_reason() -> None:
    assert parse_prompt("") == (None, "empty reply")
    assert parse_prompt("Sure!\nHere you go:")[0] is None
    cand, why = parse_prompt("x" * (MAX_PROMPT_CHARS + 1))
    assert cand is None and "longer than" in why
    with pytest.raises(CandidateRejected):
        PromptCandidate("two\nlines")
    assert PromptCandidate("no placeholder needed").fill("ignored") == "no placeholder needed"


def test_image_prices() -> None:
    assert image_price("dall-e-3", None, "1024x1024") == pytest.approx(0.04)
    assert image_price("dall-e-3", "hd", "1792x1024") == pytest.approx(0.12)
    assert image_price("gpt-image-1", "low", "1024x1024") == pytest.approx(0.011)
    assert image_price("dall-e-3-2026-01-01", "hd", "1024x1024") == pytest.approx(0.08)
    assert image_price("my-local-model", None, "512x512") is None
