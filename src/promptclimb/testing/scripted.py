"""A scripted chat LLM for tests and for users' own tests.

Three modes: a list of replies answered in call order (``request.call_number``, so a resumed run
that replays its first calls from the store continues with the right reply); replies keyed by a
substring of the last user message; or a recorded transcript (JSONL of request key -> reply, as
``promptclimb export`` writes it) replayed exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from promptclimb.llm.base import ChatReply, ChatRequest, LLMConfigError, LLMError


class ScriptedLLM:
    def __init__(
        self,
        replies: Sequence[str] | Mapping[str, str] | Callable[[ChatRequest], str],
        *,
        name: str = "scripted",
        transcript: Mapping[str, str] | None = None,
        transcript_model: str = "",
    ) -> None:
        self.name = name
        self._replies = replies
        self._transcript = dict(transcript or {})
        self._transcript_model = transcript_model  # the model the transcript was recorded from
        self.requests: list[ChatRequest] = []

    def _answer(self, request: ChatRequest) -> str:
        if self._transcript:
            key = request.key(self._transcript_model or self.name)
            if key not in self._transcript:
                raise LLMError("scripted transcript has no reply for this request")
            return self._transcript[key]
        replies = self._replies
        if callable(replies):
            return replies(request)
        if isinstance(replies, Mapping):
            last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
            for needle, reply in replies.items():
                if needle in last:
                    return reply
            return replies.get("", "")
        if not replies:
            return ""
        return replies[request.call_number % len(replies)]

    def chat(self, request: ChatRequest) -> ChatReply:
        self.requests.append(request)
        texts = tuple(self._answer(request) for _ in range(max(1, request.n)))
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return ChatReply(texts, prompt_tokens, sum(len(t.split()) for t in texts), self.name)


def load_replies(path: Path) -> ScriptedLLM:
    """A file of replies: ``.jsonl`` transcript, ``.json`` list, or text with one reply a line."""
    if not path.is_file():
        raise LLMConfigError(f"scripted replies file {path} does not exist: give an existing file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return ScriptedLLM([], name=f"scripted:{path.name}",
                           transcript={r["request_key"]: r["reply"] for r in rows if r.get("reply")},
                           transcript_model=rows[0]["model"] if rows else "")
    if path.suffix == ".json":
        return ScriptedLLM(list(json.loads(text)), name=f"scripted:{path.name}")
    return ScriptedLLM([line.replace("\\n", "\n") for line in text.splitlines()],
                       name=f"scripted:{path.name}")


def default_replies() -> list[str]:
    text = resources.files("promptclimb.testing").joinpath("scripted_replies.txt").read_text()
    return [line.replace("\\n", "\n") for line in text.splitlines() if line and not line.startswith("#")]


def build(arg: str, *, options: Mapping[str, Any] | None = None) -> ScriptedLLM:
    del options
    return load_replies(Path(arg)) if arg else ScriptedLLM(default_replies())
