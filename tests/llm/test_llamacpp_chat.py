"""The Qwen2.5 instruct models through llama.cpp's chat path, for real: a multi-turn conversation
goes through the model's own chat template, and the grammar on the assistant's reply makes every
reply one valid template line (no quotes, no copied scores, no prose)."""

from __future__ import annotations

import re

import pytest

from promptclimb.candidate import parse_candidates
from promptclimb.llm.base import ChatRequest, LLMConfigError, Message
from promptclimb.llm.llamacpp import LlamaCppLLM, build

OPENING = (
    Message("system", "You are an expert in writing text prompts for vision-language models such as CLIP."),
    Message("user", "Templates that work well, with their accuracy:\n- a photo of a {}. (52.0%)\n"
                    "- a close-up photo of the {}. (49.5%)\nTemplates that work poorly:\n- art of the {}. (31.0%)\n"
                    "Write 1 new template that you expect to score higher. Reply with the template only."),
)


def _conversation(llm: LlamaCppLLM, turns: int, seed: int) -> list[str]:
    messages, replies = list(OPENING), []
    for turn in range(turns):
        reply = llm.chat(ChatRequest(tuple(messages), temperature=1.0, max_tokens=64, seed=seed + turn,
                                     shape="template_line", avoid=("a photo of a {}.",)))
        replies.append(reply.text)
        assert reply.prompt_tokens > 50 and reply.completion_tokens > 0
        messages += [Message("assistant", reply.text),
                     Message("user", f'"{reply.text}" scores 50.5%, down from 52.0%. Write a better one.')]
    return replies


def _assert_template_lines(replies: list[str]) -> None:
    for text in replies:
        assert "\n" not in text and text.count("{}") == 1 and text.endswith("."), text
        assert not re.search(r"[\"'0-9%]", text), text
        assert not re.search(r"[A-Za-z]\{\}|\{\}[A-Za-z]", text), text  # the slot stands apart
        assert len(parse_candidates(text).candidates) == 1, text


@pytest.mark.slow
def test_qwen_05b_chat_replies_are_template_lines_turn_after_turn() -> None:
    llm = build("qwen2.5-coder-0.5b", options={})
    assert llm.prompt == "chat"
    llm.check()
    replies = [r for seed in (1, 2) for r in _conversation(llm, 4, seed)]
    _assert_template_lines(replies)
    # Sampling gives different lines, not one copy. How many differ is the model's, and it varies
    # with the CPU llama.cpp was built for: on one 2-core machine each conversation repeated its
    # first line four times (2 distinct of 8), on another at least 4 were distinct.
    assert len(set(replies)) >= 2, replies


def _evaluated_tokens(llm: LlamaCppLLM, requests: list[ChatRequest]) -> list[tuple[int, int]]:
    """(tokens llama.cpp evaluated, prompt tokens) per request, counted at the model's eval."""
    model = llm.model
    counted: list[int] = []
    original = model.eval

    def counting_eval(tokens: list[int]) -> None:
        counted.append(len(tokens))
        original(tokens)

    model.eval = counting_eval
    try:
        out = []
        for request in requests:
            counted.clear()
            reply = llm.chat(request)
            out.append((sum(counted) - reply.completion_tokens, reply.prompt_tokens))
        return out
    finally:
        model.eval = original


@pytest.mark.slow
@pytest.mark.parametrize("reuse", [True, False])
def test_a_later_turn_evaluates_only_its_new_tokens(reuse: bool) -> None:
    llm = build("qwen2.5-coder-0.5b", options={"prefix_reuse": reuse, "redraws": 0})
    longer = (*OPENING, Message("assistant", "a photo of the big {}."),
              Message("user", '"a photo of the big {}." scores 50.5%, down from 52.0%. Write a better one.'))
    (_, first), (evaluated, prompt) = _evaluated_tokens(llm, [
        ChatRequest(OPENING, seed=1, shape="template_line", max_tokens=24),
        ChatRequest(longer, seed=2, shape="template_line", max_tokens=24)])
    if reuse:
        assert evaluated <= prompt - first + 16, (evaluated, prompt, first)  # about the new turn only
    else:
        assert evaluated >= prompt - 1, (evaluated, prompt)


@pytest.mark.slow
def test_qwen_15b_chat_replies_are_template_lines() -> None:
    llm = build("qwen2.5-coder-1.5b", options={"n_ctx": 1024})
    _assert_template_lines(_conversation(llm, 3, 5))


def test_an_unknown_prompt_shape_is_one_line() -> None:
    with pytest.raises(LLMConfigError, match=r"llm_options.prompt must be one of \['chat', 'completion'\]"):
        build("smollm2", options={"prompt": "raw"})


@pytest.mark.slow
def test_an_opening_seen_before_is_restored_from_the_state_cache() -> None:
    llm = build("qwen2.5-coder-0.5b", options={"redraws": 0, "state_cache_mb": 512})
    other = (OPENING[0], Message("user", "Write one template for photos of birds, with {} for the class name."))
    (_, first), (_, _), (again, prompt) = _evaluated_tokens(llm, [
        ChatRequest(OPENING, seed=1, shape="template_line", max_tokens=24),
        ChatRequest(other, seed=1, shape="template_line", max_tokens=24),
        ChatRequest(OPENING, seed=3, shape="template_line", max_tokens=24)])
    # The third request's prompt was evaluated for the first one: restored, not evaluated again.
    assert prompt == first and again <= 4, (again, prompt)


def test_a_chat_template_llama_cpp_cannot_apply_is_one_line_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from jinja2.exceptions import TemplateError

    llm = build("smollm2", options={"prompt": "chat"})

    def broken(**_: object) -> None:
        raise TemplateError("unknown tag 'generation'")

    monkeypatch.setattr(llm.model, "create_chat_completion", broken)
    with pytest.raises(LLMConfigError, match=r"cannot apply the chat template of .*gguf: TemplateError: unknown "
                                             r"tag 'generation'; set llm_options.prompt='completion'"):
        llm.check()
