"""The embedded SmolLM2 through llama.cpp, for real: the grammar makes every list-continuation
reply one line with exactly one {}."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.candidate import parse_candidates
from promptclimb.llm.base import ChatRequest, LLMConfigError, Message
from promptclimb.llm.llamacpp import KnownLines, LlamaCppLLM, amx_warning, build, resolve_model

LIST = ("Prompt templates for classifying small greyscale photos of clothing items, from worst to best accuracy:\n"
        "- art of the {}. (15.0%)\n- a drawing of a {}. (21.0%)\n- a photo of the {}. (24.5%)\n"
        "- a black and white photo of a {}. (26.0%)\n-")


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    return build("smollm2", options={})


def test_grammar_forces_one_template_per_reply(llm: LlamaCppLLM) -> None:
    valid = 0
    for seed in range(10):
        request = ChatRequest((Message("user", "write a template"),), temperature=1.0, max_tokens=40, seed=seed,
                              shape="template_line", completion_prompt=LIST)
        reply = llm.chat(request)
        assert "\n" not in reply.text and reply.text.count("{}") == 1, reply.text
        assert reply.completion_tokens > 0 and reply.prompt_tokens > 20
        valid += len(parse_candidates(reply.text).candidates) == 1
    assert valid == 10


def test_same_seed_same_reply(llm: LlamaCppLLM) -> None:
    request = ChatRequest((Message("user", "x"),), seed=7, shape="template_line", completion_prompt=LIST)
    assert llm.chat(request).text == llm.chat(request).text


def test_chat_requests_use_the_chat_template(llm: LlamaCppLLM) -> None:
    reply = llm.chat(ChatRequest((Message("user", "Say hello."),), max_tokens=12, seed=1))
    assert reply.text.strip() and reply.prompt_tokens > 0


def test_an_amx_build_is_named_with_its_rebuild_command() -> None:
    amx = "CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | "
    warning = amx_warning(amx, "0.3.36")
    assert warning is not None and "\n" not in warning
    assert "segmentation fault" in warning and "-mno-amx-int8" in warning and "--force-reinstall" in warning
    assert "llama-cpp-python==0.3.36" in warning
    assert amx_warning(amx.replace("AMX_INT8 = 1 | ", ""), "0.3.36") is None


def test_the_installed_build_has_no_amx_kernels() -> None:
    # scripts/install.sh builds without them: they segfault in the first decode on some Xeons.
    from llama_cpp import __version__, llama_print_system_info

    assert amx_warning(llama_print_system_info().decode(), __version__) is None


def test_bad_model_paths_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(LLMConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "none.gguf"))
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(LLMConfigError, match="is not a GGUF file"):
        resolve_model(str(fake))
    with pytest.raises(LLMConfigError, match="unknown llamacpp option"):
        build("smollm2", options={"threads": 2})


SHOWN = ("art of the {}.", "a drawing of a {}.", "a photo of the {}.", "a black and white photo of a {}.")


def test_a_reply_never_ends_on_a_template_to_avoid(llm: LlamaCppLLM) -> None:
    def replies(avoid: tuple[str, ...]) -> list[str]:
        return [llm.chat(ChatRequest((Message("user", "x"),), temperature=1.0, max_tokens=40, seed=seed,
                                     shape="template_line", completion_prompt=LIST, avoid=avoid)).text
                for seed in range(12)]

    known = KnownLines(SHOWN)
    free = replies(())
    assert any(text in known for text in free), free  # left alone, the model copies the list
    steered = replies(SHOWN)
    assert not any(text in known for text in steered), steered
    assert all(text.count("{}") == 1 for text in steered)


def test_known_lines_match_words_not_punctuation_and_near_copies() -> None:
    known = KnownLines(["a photo of a {}.", "a black and white photo of the big {}."])
    assert "A photo of a {}" in known and "a photo, of a {}!" in known
    assert "a black and white photo of the bigg {}." in known  # one letter off: a near copy
    assert "a photo of an old {}." not in known and "a sketch of a {}." not in known
    assert not KnownLines([])


@pytest.fixture(scope="module")
def small_context() -> LlamaCppLLM:
    return build("smollm2", options={"n_ctx": 512})


def test_a_long_scored_list_is_cut_to_the_best_lines_that_fit(small_context: LlamaCppLLM) -> None:
    head = "Prompt templates for classifying photos of clothing, from worst to best accuracy:"
    lines = [f"- a photo number {i} of a {{}}. ({i / 4:.1f}%)" for i in range(300)]  # ~5,000 tokens
    prompt = "\n".join([head, *lines, "-"])
    fitted = small_context._fit(prompt)
    kept = fitted.split("\n")
    assert kept[0] == head and kept[-1] == "-"
    assert kept[1:-1] == lines[-(len(kept) - 2):]  # the best (last) lines stay, the worst go
    assert 5 < len(kept) - 2 < 300
    reply = small_context.chat(ChatRequest((Message("user", "x"),), seed=1, max_tokens=40,
                                           shape="template_line", completion_prompt=prompt))
    assert reply.text.count("{}") == 1 and reply.prompt_tokens <= 512 - 300


def test_a_long_conversation_keeps_its_opening_and_latest_turns(small_context: LlamaCppLLM) -> None:
    opening = [Message("system", "You write prompt templates."),
               Message("user", "Templates that work well: a photo of a {}. Write a better one.")]
    turns = []
    for i in range(60):  # ~2,000 tokens: past the 512-token window
        turns += [Message("assistant", f"a detailed photo number {i} of a {{}}."),
                  Message("user", f'"a detailed photo number {i} of a {{}}." scores {i}%, up. Write another.')]
    request = ChatRequest((*opening, *turns), seed=1, max_tokens=24)
    fitted = small_context._fit_messages([{"role": m.role, "content": m.content} for m in request.messages])
    assert [m["content"] for m in fitted[:2]] == [m.content for m in opening]
    assert fitted[-1]["content"] == turns[-1].content and len(fitted) < len(request.messages)
    assert [m["role"] for m in fitted[2:]] == ["assistant", "user"] * ((len(fitted) - 2) // 2)
    reply = small_context.chat(request)  # without the cut llama.cpp refuses: tokens exceed the window
    assert reply.text and reply.prompt_tokens <= 512
