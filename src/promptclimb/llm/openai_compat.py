"""Any OpenAI-compatible chat endpoint (OpenAI, Azure-style gateways, vLLM, Ollama, llama.cpp
server, LM Studio) through the official ``openai`` SDK.

The key is read from the environment variable named by ``api_key_env`` at call time and kept
only inside the SDK client: never stored, logged, or put in an error message. The SDK's own
retries are off; ours (llm/retry.py) are explicit and tested.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from promptclimb.llm.base import ChatReply, ChatRequest, LLMConfigError, LLMError, LLMReplyError, RetryableLLMError
from promptclimb.llm.retry import RetryPolicy, retry_after

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAICompatLLM:
    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float | None = None, max_tokens: int | None = None, timeout: float = 60.0,
                 max_retries: int = 5, max_concurrency: int = 8, organization: str | None = None,
                 retry: RetryPolicy | None = None, retry_delay: float = 0.5) -> None:
        if not model:
            raise LLMConfigError("give a model name: --llm openai:MODEL, e.g. openai:gpt-4o-mini")
        self.model = model
        self.name = f"openai:{model}"
        self.cache_id = f"{self.name}@{base_url or 'api.openai.com'}"
        self.base_url = base_url
        self.where = base_url or "https://api.openai.com/v1"  # named in every endpoint error
        self.api_key_env = api_key_env
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout = timeout
        self.organization = organization
        self.retry = retry or RetryPolicy(max_attempts=max(1, max_retries), base_delay=retry_delay)
        self.limit = threading.BoundedSemaphore(max_concurrency)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatLLM(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def _key(self) -> str:
        if not self.api_key_env:
            return "not-needed"  # local servers that take no key
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMConfigError(f"{self.api_key_env} is not set: export it, or set llm_options.api_key_env "
                                 '(use "" for a local server that needs no key)')
        return key

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError:
                    raise LLMConfigError("the openai backend needs the openai package: pip install openai==3.54.0") \
                        from None
                self._client = openai.OpenAI(api_key=self._key(), base_url=self.base_url, timeout=self.timeout,
                                             max_retries=0, organization=self.organization)
            return self._client

    def check(self) -> None:
        """At start-up: the key is set, the endpoint answers, and it knows the model."""
        import openai

        where = self.base_url or "https://api.openai.com/v1"
        try:
            models = [m.id for m in self.client.models.list()]
        except openai.AuthenticationError:
            raise LLMConfigError(f"{where} refused the key in {self.api_key_env}: check it") from None
        except openai.APIConnectionError:
            raise LLMConfigError(f"cannot reach {where}: check llm_options.base_url and that the server runs") \
                from None
        except openai.APIStatusError:
            return  # some servers do not list models; the first call will tell
        if models and self.model not in models:
            raise LLMConfigError(f"{where} does not serve model {self.model!r}; it serves: "
                                 f"{', '.join(sorted(models)[:8])}")

    def _call(self, request: ChatRequest) -> ChatReply:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature if self.temperature is None else self.temperature,
            "max_tokens": request.max_tokens if self.max_tokens is None else self.max_tokens,
            "n": request.n,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        started = time.perf_counter()
        name = f"{self.name} at {self.where}"
        try:
            raw = self.client.chat.completions.with_raw_response.create(**kwargs)
            out = raw.parse()
        except openai.RateLimitError as err:
            raise RetryableLLMError(f"{name} answered 429 (rate limited)", retry_after(err)) from None
        except openai.APITimeoutError:
            raise RetryableLLMError(f"{name} timed out after {self.timeout:g}s") from None
        except openai.APIConnectionError as err:
            raise RetryableLLMError(f"connection to {name} failed: {type(err.__cause__).__name__}") from None
        except openai.AuthenticationError:
            raise LLMConfigError(f"{name} refused the key in {self.api_key_env}: check it") from None
        except openai.NotFoundError:
            raise LLMConfigError(f"{name}: model or endpoint not found (404); check the model name and "
                                 "llm_options.base_url") from None
        except openai.APIStatusError as err:
            if err.status_code in RETRYABLE_STATUS:
                raise RetryableLLMError(f"{name} answered {err.status_code}", retry_after(err)) from None
            raise LLMError(f"{name} answered {err.status_code}: {str(err.message)[:200]}") from None
        except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError) as err:
            raise RetryableLLMError(f"{name} sent a malformed reply ({type(err).__name__})") from None
        texts, choices = _texts(out, raw.http_response, name)
        if not any(t.strip() for t in texts):
            raise LLMReplyError(f"{self.name} returned empty text: the model wrote nothing")
        usage = getattr(out, "usage", None)
        return ChatReply(texts, int(getattr(usage, "prompt_tokens", 0) or 0),
                         int(getattr(usage, "completion_tokens", 0) or 0), self.name,
                         latency_s=time.perf_counter() - started,
                         finish_reasons=tuple(str(c.finish_reason or "") for c in choices))

    def chat(self, request: ChatRequest) -> ChatReply:
        # A reply cut off by max_tokens ("length") is returned as is: the parser takes whole lines.
        return self.retry.call(lambda: self._call(request), self.limit)


def _texts(out: Any, response: Any, name: str) -> tuple[tuple[str, ...], list[Any]]:
    """The reply texts, or a retryable error naming what came instead of the API's JSON: an HTML
    page (a proxy or gateway error), no choices, or ``content: null``. Retried like any other
    transient fault; an empty string is the model's own (weak) answer and is returned."""
    where = f"{name}, status {response.status_code}"
    if isinstance(out, str) or not hasattr(out, "choices"):
        kind = response.headers.get("content-type", "?").split(";")[0]
        what = "an HTML body" if "html" in kind or str(out).lstrip()[:1] == "<" else f"a {kind} body"
        raise RetryableLLMError(f"{what}, not the API's JSON ({where})")
    choices = [c for c in (out.choices or []) if getattr(c, "message", None) is not None]
    if not choices:
        raise RetryableLLMError(f"a reply with no choices ({where})")
    if all(c.message.content is None for c in choices):
        raise RetryableLLMError(f"a reply with content null ({where})")
    return tuple(c.message.content or "" for c in choices), choices


OPTIONS = {"base_url", "api_key_env", "temperature", "max_tokens", "timeout", "max_retries", "max_concurrency",
           "organization", "retry_delay"}


def build(arg: str, *, options: Mapping[str, Any]) -> OpenAICompatLLM:
    unknown = set(options) - OPTIONS
    if unknown:
        raise LLMConfigError(f"unknown openai option(s) {sorted(unknown)}; known: {sorted(OPTIONS)}")
    return OpenAICompatLLM(arg, **dict(options))
