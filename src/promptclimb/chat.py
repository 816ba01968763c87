"""The chat request and reply records: what a chat LLM is asked and what it answers, as frozen
data with a stable JSON form and a request hash. Shared by the LLM backends (llm/), the store,
which records them, and the recorded-call layer (calls.py), which keys replays by the hash.

A request carries both a chat form (``messages``) and, optionally, a raw-text form
(``completion_prompt``): capable chat models use the first; weak local models (SmolLM2-135M) do far
better continuing a list of scored templates in the second, where chat turns drew meta-sentences
such as "I can create a new template with {}". ``shape="template_line"`` asks the backend to force
one line with exactly one ``{}`` where it can (a llama.cpp grammar); ``shape="class_lines"`` asks
for lines "class: description" (describe's replies).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
Shape = Literal["free", "template_line", "class_lines"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    temperature: float = 1.0
    max_tokens: int = 256
    n: int = 1
    seed: int | None = None
    shape: Shape = "free"
    completion_prompt: str | None = None
    stop: tuple[str, ...] = ()
    # Templates already in the run. A backend that samples locally draws again (bounded) instead
    # of returning one of them; a remote backend ignores it (the proposer's corrective message
    # handles repeats there).
    avoid: tuple[str, ...] = ()
    # Position in the run (not part of the cache key): lets a scripted LLM answer in order,
    # also when the calls before it were replayed from the store.
    call_number: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("call_number")
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatRequest:
        d = dict(d)
        d["messages"] = tuple(Message(**m) for m in d["messages"])
        d["stop"] = tuple(d.get("stop", ()))
        d["avoid"] = tuple(d.get("avoid", ()))
        return cls(**d)

    def key(self, model: str) -> str:
        """Hash of everything that determines the reply (the model name included)."""
        blob = json.dumps({"model": model, **self.to_json()}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_message(self, role: Role, content: str) -> ChatRequest:
        from dataclasses import replace

        return replace(self, messages=(*self.messages, Message(role, content)))


@dataclass(frozen=True)
class ChatReply:
    texts: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    cached: bool = False
    latency_s: float = 0.0
    finish_reasons: tuple[str, ...] = ()
    # Samples generated to produce ``texts`` (a local backend redraws on a template to avoid).
    draws: int = 1

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatReply:
        d = dict(d)
        d["texts"] = tuple(d["texts"])
        d["finish_reasons"] = tuple(d.get("finish_reasons", ()))
        return cls(**d)
