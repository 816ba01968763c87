"""Retrying remote calls: exponential backoff with full jitter, honouring Retry-After, for the
errors that may pass (rate limits, server errors, timeouts, dropped connections), a bounded number
of times; plus a limit on concurrent requests. Sleep and randomness are injectable for tests."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from promptclimb.llm.base import RetryableLLMError

T = TypeVar("T")


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    delays: list[float] = field(default_factory=list)  # what was slept, for logs and tests

    def delay(self, attempt: int, error: RetryableLLMError) -> float:
        if error.retry_after is not None:
            return min(self.max_delay, max(0.0, error.retry_after))
        return min(self.max_delay, self.base_delay * 2**attempt) * self.rand()

    def call(self, fn: Callable[[], T], limit: threading.BoundedSemaphore | None = None) -> T:
        """``fn()`` until it succeeds, raises a non-retryable error, or attempts run out."""
        last: RetryableLLMError | None = None
        for attempt in range(self.max_attempts):
            try:
                if limit is None:
                    return fn()
                with limit:
                    return fn()
            except RetryableLLMError as err:
                last = err
                if attempt + 1 < self.max_attempts:
                    wait = self.delay(attempt, err)
                    self.delays.append(wait)
                    self.sleep(wait)
        assert last is not None
        raise type(last)(f"{last} (gave up after {self.max_attempts} attempts)", last.retry_after)


def retry_after(err: Any) -> float | None:
    """The seconds an HTTP error's Retry-After header asks for (an SDK error with a ``response``), or None."""
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
