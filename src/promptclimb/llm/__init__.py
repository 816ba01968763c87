"""Chat LLMs by name. An LLM factory is ``build(arg, *, options) -> ChatLLM``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptclimb.llm.base import (
    BudgetExhausted,
    CacheMiss,
    ChatLLM,
    ChatReply,
    ChatRequest,
    LLMConfigError,
    LLMError,
    LLMReplyError,
    Message,
    RetryableLLMError,
)
from promptclimb.registry import Registry

LLMS: Registry[ChatLLM] = Registry(
    "llm",
    {
        "scripted": "promptclimb.testing.scripted:build",
        "llamacpp": "promptclimb.llm.llamacpp:build",
    },
)


def build_llm(spec: str, *, options: Mapping[str, Any] | None = None) -> ChatLLM:
    return LLMS.create(spec, options=dict(options or {}))


__all__ = [
    "LLMS", "BudgetExhausted", "CacheMiss", "ChatLLM", "ChatReply", "ChatRequest", "LLMConfigError",
    "LLMError", "LLMReplyError", "Message", "RetryableLLMError", "build_llm",
]
