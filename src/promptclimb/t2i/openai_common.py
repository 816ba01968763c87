"""What the OpenAI-compatible image generator and judge share: the SDK client with the key read
from the environment at call time (the llm backend's client, retries and concurrency limit), a
start-up check, and one mapping of SDK errors to our typed errors, where a content-policy
refusal is its own error (a failed trial, never retried)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from promptclimb.llm.base import LLMConfigError, LLMError, RetryableLLMError
from promptclimb.llm.openai_compat import RETRYABLE_STATUS, OpenAICompatLLM
from promptclimb.llm.retry import RetryPolicy, retry_after
from promptclimb.t2i.base import GenerationRefused

T = TypeVar("T")
REFUSAL_CODES = {"content_policy_violation", "moderation_blocked", "content_filter", "safety_violation"}


def transport(model: str, *, base_url: str | None, api_key_env: str, timeout: float, max_retries: int,
              retry: RetryPolicy | None = None) -> OpenAICompatLLM:
    """The llm backend's SDK client, retry policy and concurrency limit, reused as they are."""
    return OpenAICompatLLM(model, base_url=base_url, api_key_env=api_key_env, timeout=timeout,
                           max_retries=max_retries, retry=retry)


def require_key(api_key_env: str, part: str) -> None:
    if api_key_env and not os.environ.get(api_key_env):
        raise LLMConfigError(f"{api_key_env} is not set: export it, or set {part}.api_key_env "
                             '(use "" for a local server that needs no key)')


def check_endpoint(t: OpenAICompatLLM, part: str) -> None:
    """The key is set, the endpoint answers, and it serves the model (when it lists models)."""
    import openai

    require_key(t.api_key_env, part)
    where = t.base_url or "https://api.openai.com/v1"
    try:
        models = [m.id for m in t.client.models.list()]
    except openai.AuthenticationError:
        raise LLMConfigError(f"{where} refused the key in {t.api_key_env}: check it") from None
    except openai.APIConnectionError:
        raise LLMConfigError(f"cannot reach {where}: check {part}.base_url and that the server runs") from None
    except openai.APIStatusError:
        return  # some servers do not list models; the first call will tell
    if models and t.model not in models:
        raise LLMConfigError(f"{where} does not serve {part} model {t.model!r}; it serves: "
                             f"{', '.join(sorted(models)[:8])}")


def _refusal(err: Any) -> bool:
    body = err.body if isinstance(getattr(err, "body", None), dict) else {}
    code = str(getattr(err, "code", None) or body.get("code") or "")
    message = str(getattr(err, "message", "")).lower()
    return code in REFUSAL_CODES or "safety system" in message or "content policy" in message


def translate(fn: Callable[[], T], name: str, part: str) -> T:
    """``fn()`` (one SDK call) with its errors mapped to ours."""
    import openai

    try:
        return fn()
    except openai.RateLimitError as err:
        raise RetryableLLMError(f"rate limited by {name}", retry_after(err)) from None
    except openai.APITimeoutError:
        raise RetryableLLMError(f"{name} timed out") from None
    except openai.APIConnectionError as err:
        raise RetryableLLMError(f"connection to {name} failed: {type(err.__cause__).__name__}") from None
    except openai.AuthenticationError:
        raise LLMConfigError(f"{name} refused the key: check {part}.api_key_env") from None
    except openai.NotFoundError:
        raise LLMConfigError(f"{name}: model or endpoint not found; check {part}.model and {part}.base_url") \
            from None
    except openai.APIStatusError as err:
        if _refusal(err):
            raise GenerationRefused(f"{name} refused the prompt (content policy): {str(err.message)[:200]}") \
                from None
        if err.status_code in RETRYABLE_STATUS:
            raise RetryableLLMError(f"{name} answered {err.status_code}", retry_after(err)) from None
        raise LLMError(f"{name} answered {err.status_code}: {str(err.message)[:200]}") from None
    except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError) as err:
        raise RetryableLLMError(f"{name} sent a malformed reply ({type(err).__name__})") from None
