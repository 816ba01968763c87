"""The ChatLLM protocol: one request in, one or more reply texts out, with token counts, and the
typed errors every backend raises. The request and reply records live in promptclimb.chat.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from promptclimb.chat import ChatReply, ChatRequest, Message, Role, Shape

__all__ = ["BudgetExhausted", "CacheMiss", "ChatLLM", "ChatReply", "ChatRequest", "EndpointDown", "LLMConfigError",
           "LLMError", "LLMReplyError", "Message", "RetryableLLMError", "Role", "Shape"]


@runtime_checkable
class ChatLLM(Protocol):
    """Anything that answers chat requests. ``name`` is the registry name, used in cache keys."""

    name: str

    def chat(self, request: ChatRequest) -> ChatReply: ...


class LLMError(RuntimeError):
    """Base of every LLM failure. ``retryable`` says whether trying again may help."""

    retryable = False


class RetryableLLMError(LLMError):
    """Rate limits, server errors, dropped connections, timeouts."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMConfigError(LLMError):
    """Bad setup found before any work: missing key, unknown model, unreachable URL, bad file."""


class EndpointDown(LLMConfigError):
    """The endpoint, not the model, keeps failing (the stopping rule in study.py): the run stops
    with one line naming the endpoint, what it answered and the fix, and stays resumable."""


class LLMReplyError(LLMError):
    """The model answered with nothing usable (empty, truncated or malformed)."""


class CacheMiss(LLMError):
    """``--replay-only`` and the request is not in the cache."""


class BudgetExhausted(Exception):
    """A run budget (scorer queries, LLM calls, tokens, money) was reached: stop cleanly."""

    def __init__(self, what: str) -> None:
        super().__init__(f"budget reached: {what}")
        self.what = what
