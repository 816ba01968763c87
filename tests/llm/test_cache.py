from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.llm.base import CacheMiss, ChatReply, ChatRequest, Message
from promptclimb.llm.cache import CachedLLM, LLMCache


class CountingLLM:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, request: ChatRequest) -> ChatReply:
        self.calls += 1
        return ChatReply((f"reply {self.calls} {{}}",), 3, 2, self.name)


REQ = ChatRequest((Message("user", "give me a template"),), temperature=1.0, seed=1)


def test_identical_requests_are_distinct_samples_and_replay_exactly(tmp_path: Path) -> None:
    inner = CountingLLM()
    llm = CachedLLM(inner, LLMCache(tmp_path / "c.sqlite"))
    first = [llm.chat(REQ).text for _ in range(3)]
    assert first == ["reply 1 {}", "reply 2 {}", "reply 3 {}"]
    rerun = CachedLLM(inner, LLMCache(tmp_path / "c.sqlite"))
    replies = [rerun.chat(REQ) for _ in range(3)]
    assert [r.text for r in replies] == first and all(r.cached for r in replies)
    assert inner.calls == 3
    assert rerun.chat(REQ).text == "reply 4 {}"  # a fourth sample is new


def test_key_covers_content_and_model_but_not_call_number() -> None:
    from dataclasses import replace

    assert REQ.key("a") != REQ.key("b")
    assert REQ.key("a") != replace(REQ, temperature=0.5).key("a")
    assert REQ.key("a") != replace(REQ, seed=2).key("a")
    assert REQ.key("a") == replace(REQ, call_number=9).key("a")


def test_replay_only_fails_clearly_on_a_miss(tmp_path: Path) -> None:
    inner = CountingLLM()
    llm = CachedLLM(inner, LLMCache(tmp_path / "c.sqlite"), replay_only=True)
    with pytest.raises(CacheMiss, match="replay-only"):
        llm.chat(REQ)
    assert inner.calls == 0


def test_corrupt_cache_file_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"not sqlite at all" * 100)
    cache = LLMCache(path)
    cache.put("k", 0, "m", ChatReply(("x",)))
    assert cache.get("k", 0) == ChatReply(("x",)) and len(cache) == 1
