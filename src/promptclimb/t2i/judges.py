"""Judges: a multimodal chat model looks at the generated image(s) (and the reference) and replies
with written feedback and a revised prompt in a JSON object. The request is rendered once, from
meta_prompts/judge.txt, as text with ``[image: PATH sha256=...]`` lines: that text is what the
store records and what its cache key hashes; the backend turns each such line into the image.

- ``openai:MODEL``: any OpenAI-compatible chat endpoint that takes image inputs (gpt-4o...).
- ``scripted``: the toy judge of t2i/fake.py, or ``scripted:FILE`` replies (one JSON a line).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Literal

from promptclimb.llm.base import LLMConfigError, LLMReplyError
from promptclimb.t2i.base import JudgeCase, JudgeReply, meta_prompt
from promptclimb.t2i.config import JudgeConfig
from promptclimb.t2i.images import data_url, open_image, sha256_file
from promptclimb.t2i.openai_common import check_endpoint, translate, transport

MARKER = re.compile(r"^\[image: (\S+) sha256=([0-9a-f]{16})\]$", re.MULTILINE)
Mode = Literal["compare", "describe"]


def marker(root: Path, rel: str) -> str:
    return f"[image: {rel} sha256={sha256_file(root / rel)[:16]}]"


def render(case: JudgeCase, root: Path, mode: Mode) -> tuple[str, str]:
    """(system, user) text of a judge request; the section is chosen by name: MODE_KIND."""
    prompts = meta_prompt("judge")
    images = "\n\n".join(f"Generated image {i}:\n{marker(root, rel)}" for i, rel in enumerate(case.images, 1))
    values = {"intent": _line(case.intent), "edit": _line(case.edit), "prompt": _line(case.prompt),
              "source_prompt": _line(case.source_prompt), "images": images,
              "reference": marker(root, case.reference) if case.reference else "(not shown)",
              "format": prompts.render("format")}
    return prompts.render("system"), prompts.render(f"{mode}_{case.kind}", **values)


def _line(text: str | None) -> str:
    """User and LLM text on one line: it can never pose as an image line of the request."""
    return " ".join((text or "").split())


def split_images(user: str, root: Path) -> list[tuple[str, Any]]:
    """The user text as ("text", str) and ("image", Path) parts, in order."""
    parts: list[tuple[str, Any]] = []
    pos = 0
    for m in MARKER.finditer(user):
        if user[pos:m.start()].strip():
            parts.append(("text", user[pos:m.start()].strip("\n")))
        path = (root / m.group(1)).resolve()
        if not path.is_relative_to(root.resolve()):
            raise LLMConfigError(f"judge request names an image outside the run: {m.group(1)}")
        parts.append(("image", path))
        pos = m.end()
    if user[pos:].strip():
        parts.append(("text", user[pos:].strip("\n")))
    return parts


class OpenAIJudge:
    def __init__(self, model: str, config: JudgeConfig) -> None:
        if not model:
            raise LLMConfigError("give a judge model: --judge openai:MODEL, e.g. openai:gpt-4o")
        self.model, self.config = model, config
        self.name = f"openai:{model}"
        self.cache_id = (f"judge:{self.name}@{config.base_url or 'api.openai.com'} detail={config.detail} "
                         f"json={config.json_mode} t={config.temperature} max={config.max_tokens}")
        self.transport = transport(model, base_url=config.base_url, api_key_env=config.api_key_env,
                                   timeout=config.timeout, max_retries=config.max_retries)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIJudge(model={self.model!r}, base_url={self.config.base_url!r})"

    def check(self) -> None:
        check_endpoint(self.transport, "judge")

    def _content(self, user: str, root: Path) -> list[dict[str, Any]]:
        return [{"type": "text", "text": value} if kind == "text" else
                {"type": "image_url", "image_url": {"url": data_url(value), "detail": self.config.detail}}
                for kind, value in split_images(user, root)]

    def _call(self, kwargs: dict[str, Any]) -> JudgeReply:
        client = self.transport.client
        out = translate(lambda: client.chat.completions.create(**kwargs), self.name, "judge")
        choices = getattr(out, "choices", None) or []
        text = (choices[0].message.content or "") if choices and choices[0].message is not None else ""
        if not text.strip():
            raise LLMReplyError(f"judge {self.name} returned no text")
        usage = getattr(out, "usage", None)
        return JudgeReply(text, int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0))

    def chat(self, system: str, user: str, root: Path) -> JudgeReply:
        c = self.config
        kwargs: dict[str, Any] = {
            "model": self.model, "temperature": c.temperature, "max_tokens": c.max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": self._content(user, root)}],
        }
        if c.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        return self.transport.retry.call(lambda: self._call(kwargs), self.transport.limit)


class ScriptedJudge:
    """The toy judge (reads the pictures of t2i/fake.py), or replies from a file in call order."""

    def __init__(self, replies_file: str = "") -> None:
        self.name = f"scripted:{replies_file}" if replies_file else "scripted"
        self.cache_id = f"judge:{self.name}"
        self.replies: list[str] = []
        if replies_file:
            path = Path(replies_file)
            if not path.is_file():
                raise LLMConfigError(f"scripted judge replies file {path} does not exist: one JSON reply a line")
            self.replies = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        self._calls = 0
        self._lock = threading.Lock()

    def chat(self, system: str, user: str, root: Path) -> JudgeReply:
        from promptclimb.t2i.fake import toy_judge_reply

        with self._lock:
            n, self._calls = self._calls, self._calls + 1
        if self.replies:
            text = self.replies[n % len(self.replies)]
        else:
            parts = split_images(user, root)
            labelled = [(_label(parts, i), open_image(v)) for i, (k, v) in enumerate(parts) if k == "image"]
            text = toy_judge_reply("\n".join(v for k, v in parts if k == "text"), labelled)
        return JudgeReply(text, len((system + user).split()), len(text.split()))


def _label(parts: list[tuple[str, Any]], i: int) -> str:
    """The text line just above image part i."""
    before = parts[i - 1][1] if i > 0 and parts[i - 1][0] == "text" else ""
    lines = [line for line in str(before).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def build_openai(arg: str, *, config: JudgeConfig) -> OpenAIJudge:
    return OpenAIJudge(arg or config.model, config)


def build_scripted(arg: str, *, config: JudgeConfig) -> ScriptedJudge:
    return ScriptedJudge(arg or config.model)
