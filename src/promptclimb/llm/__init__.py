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
        "openai": "promptclimb.llm.openai_compat:build",
    },
    help={
        "scripted": "built-in example replies, or scripted:FILE (replies or a recorded exchanges.jsonl)",
        "llamacpp": "a local GGUF through llama.cpp: llamacpp:qwen2.5-coder-1.5b (embedded default), "
                    "qwen2.5-coder-0.5b, smollm2, gemma3-270m, or a path",
        "openai": "any OpenAI-compatible endpoint: openai:MODEL (llm_options.base_url, api_key_env)",
    },
)


def build_llm(spec: str, *, options: Mapping[str, Any] | None = None) -> ChatLLM:
    return LLMS.create(spec, options=dict(options or {}))


__all__ = [
    "LLMS", "BudgetExhausted", "CacheMiss", "ChatLLM", "ChatReply", "ChatRequest", "LLMConfigError",
    "LLMError", "LLMReplyError", "Message", "RetryableLLMError", "build_llm",
]
