"""The recorded-call layer and the run's one budget meter.

Every outside call a run makes (the chat LLM, the image generator, the judge; later a paid VLM)
goes through ``RecordedCalls.call``: request key + sample index -> the recorded outcome replayed
from the store, or else the budget checked, the call made, recorded with its kind in that kind's
own typed form, and charged to the ``Meter``. A killed run so never pays twice for a call it had
recorded, and a resumed run counts what its replays cost, as the killed one did.

What differs by kind is data: which budget limits a call must fit (``LIMITS``), whether a
recorded error is replayed as that error (an LLM error cost a trial, so yes) or the call is made
again (a failed image or judge call: yes, again), and the endpoint rule a caller passes in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from promptclimb.llm.base import BudgetExhausted, LLMError, RetryableLLMError
from promptclimb.store import ENDPOINT_FAILED, CallRecord, RunStore

LLM, IMAGE, JUDGE = "llm", "image", "judge"
KINDS = (LLM, IMAGE, JUDGE)


@dataclass(frozen=True)
class Budget:
    """Limits; the run stops cleanly at the first one reached. None = no limit."""

    scorer_queries: int | None = None
    llm_calls: int | None = None
    llm_tokens: int | None = None
    cost_usd: float | None = None
    images: int | None = None  # images GENERATED (text-to-image runs)
    scorer_images: int | None = None  # images SCORED by the classification scorer (train + val)


@dataclass
class Usage:
    """What a run has spent, by the budget's measures and by call kind."""

    scorer_queries: int = 0
    scorer_images: int = 0  # images the scorer classified for trials (racing scores fewer)
    cost_usd: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)  # what calls made: images
    cost_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def llm_calls(self) -> int:
        return self.calls.get(LLM, 0)

    @property
    def llm_tokens(self) -> int:
        return self.tokens.get(LLM, 0)

    @property
    def images(self) -> int:
        return self.units.get(IMAGE, 0)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "llm_calls": self.llm_calls, "llm_tokens": self.llm_tokens, "images": self.images}


# The limits a call of each kind must fit before it is made: (budget field, used so far, units it adds).
Limit = Callable[[Budget, Usage, int], str | None]


def _at_least(name: str) -> Limit:
    def check(b: Budget, u: Usage, units: int) -> str | None:
        cap = getattr(b, name)
        return f"{name}={cap}" if cap is not None and getattr(u, name) >= cap else None
    return check


def _images(b: Budget, u: Usage, units: int) -> str | None:
    return f"images={b.images}" if b.images is not None and u.images + units > b.images else None


def _llm_cost(b: Budget, u: Usage, units: int) -> str | None:
    spent = u.cost_by_kind.get(LLM, 0.0)
    return f"cost_usd={b.cost_usd}" if b.cost_usd is not None and spent >= b.cost_usd else None


LIMITS: dict[str, tuple[Limit, ...]] = {
    # An LLM call is held to what LLM calls cost; an image to the run's whole cost (images, judge, LLM).
    LLM: (_at_least("llm_calls"), _at_least("llm_tokens"), _llm_cost),
    IMAGE: (_images, _at_least("cost_usd")),
    JUDGE: (),  # the image it judges is paid for: its verdict is always fetched
}


class Meter:
    """The one budget meter of a run; thread-safe. Every kind charges it through RecordedCalls."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.usage = Usage()
        self._lock = threading.RLock()

    def check(self, kind: str, units: int = 0) -> None:
        with self._lock:
            for limit in LIMITS.get(kind, ()):
                hit = limit(self.budget, self.usage, units)
                if hit is not None:
                    raise BudgetExhausted(hit)

    def charge(self, record: CallRecord) -> None:
        u, kind = self.usage, record.kind
        with self._lock:
            u.calls[kind] = u.calls.get(kind, 0) + 1
            u.tokens[kind] = u.tokens.get(kind, 0) + record.tokens
            u.units[kind] = u.units.get(kind, 0) + record.units
            u.cost_by_kind[kind] = u.cost_by_kind.get(kind, 0.0) + (record.cost_usd or 0.0)
            u.cost_usd += record.cost_usd or 0.0

    def check_queries(self, n: int, images: int = 0) -> None:
        """Before a scoring of ``n`` queries costing ``images`` images at most (0: not known, then
        the image budget stops the run once it is reached)."""
        cap, cap_images = self.budget.scorer_queries, self.budget.scorer_images
        with self._lock:
            if cap is not None and self.usage.scorer_queries + n > cap:
                raise BudgetExhausted(f"scorer_queries={cap}")
            if cap_images is not None and self.usage.scorer_images + max(images, 1) > cap_images:
                raise BudgetExhausted(f"scorer_images={cap_images}")

    def add_queries(self, n: int, images: int = 0) -> None:
        with self._lock:
            self.usage.scorer_queries += n
            self.usage.scorer_images += images


@dataclass(frozen=True)
class Made:
    """What a live call returned, in its kind's record form."""

    response: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    units: int = 0
    cost_usd: float | None = None


class Endpoints(Protocol):
    """A caller's endpoint rule: told of every live outcome; returns the error to raise instead
    (the endpoint is down) and the text to record for a failure (None: record nothing)."""

    def down(self) -> BaseException | None: ...

    def answered(self, kind: str) -> None: ...

    def failed(self, kind: str, err: LLMError) -> tuple[BaseException | None, str | None]: ...


class Plain:
    """No stopping rule: a failure is recorded as its message and raised."""

    def down(self) -> BaseException | None:
        return None

    def answered(self, kind: str) -> None:
        return None

    def failed(self, kind: str, err: LLMError) -> tuple[BaseException | None, str | None]:
        return None, str(err)


REPLAYS_ERRORS = {LLM: True, IMAGE: False, JUDGE: False}


class RecordedCalls:
    """Replay-or-call-record-charge over one run's store and meter."""

    def __init__(self, store: RunStore, meter: Meter | None = None) -> None:
        self.store = store
        self.meter = meter or Meter()

    def call(self, kind: str, key: str, sample: int, model: str, request: dict[str, Any],
             live: Callable[[], Made], *, endpoints: Endpoints | None = None, units: int = 0,
             usable: Callable[[CallRecord], bool] = lambda record: True) -> CallRecord:
        """The outcome of this call: replayed if recorded (a recorded error raised again, for kinds
        that replay errors), else made live. Raises BudgetExhausted before a live call that
        would exceed the budget, and the caller's LLMError (recorded first) when the call fails."""
        hit = self.store.find_call(kind, key, sample)
        if hit is not None and ((hit.response is None and not REPLAYS_ERRORS.get(kind, False))
                                or (hit.response is not None and not usable(hit))):
            hit = None
        if hit is not None:
            self.meter.charge(hit)
            if hit.response is None:
                raise _replayed_error(hit.error or "unknown error")
            return hit
        rule = endpoints or Plain()
        down = rule.down()
        if down is not None:
            raise down
        self.meter.check(kind, units)
        started = time.time()
        try:
            made = live()
        except LLMError as err:
            stop, text = rule.failed(kind, err)
            if text is not None:
                self.meter.charge(self._record(kind, key, sample, model, request, None, text, started))
            if stop is not None:
                raise stop from None
            raise
        rule.answered(kind)
        record = self._record(kind, key, sample, model, request, made, None, started)
        self.meter.charge(record)
        return record

    def _record(self, kind: str, key: str, sample: int, model: str, request: dict[str, Any], made: Made | None,
                error: str | None, started: float) -> CallRecord:
        m = made or Made({})
        response = made.response if made is not None else None
        id_ = self.store.add_call(kind, key, sample, model, request, response, error,
                                  prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens,
                                  units=m.units, cost_usd=m.cost_usd, started_at=started)
        return CallRecord(id_, kind, key, sample, model, request, response, error, m.prompt_tokens,
                          m.completion_tokens, m.units, m.cost_usd, started, time.time())


def _replayed_error(error: str) -> LLMError:
    """A recorded failure raised again as the same kind of error."""
    if error.startswith(ENDPOINT_FAILED):
        return RetryableLLMError(error.removeprefix(ENDPOINT_FAILED))
    return LLMError(error)
