"""The protocols of text-to-image optimization: a generator (prompt -> images), a judge (images ->
written feedback and a revised prompt), a similarity backbone (a number), and their errors.
Backends are picked by name from the registries in t2i/__init__.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL.Image import Image

from promptclimb.llm.base import LLMError
from promptclimb.proposers.base import MetaPrompt


class GenerationRefused(LLMError):
    """The generator refused the prompt (content policy, safety filter): a failed trial, not a crash."""


@dataclass(frozen=True)
class Generated:
    """What one generator call returned: images (in order) and what the provider says it drew."""

    images: tuple[Image, ...]
    revised_prompts: tuple[str | None, ...] = ()
    cost_usd: float | None = None


@runtime_checkable
class ImageGenerator(Protocol):
    name: str  # registry spec, e.g. "openai:dall-e-3"
    cache_id: str  # what images depend on besides the prompt and seed (endpoint, size, quality, n)

    def generate(self, prompt: str, seed: int) -> Generated: ...


@dataclass(frozen=True)
class JudgeCase:
    """What the judge is asked about: the task, the prompt and the images (paths in the run)."""

    kind: str  # generate | invert | personalize
    prompt: str
    images: tuple[str, ...]  # generated images, relative to the run directory
    intent: str | None = None
    edit: str | None = None
    source_prompt: str | None = None
    reference: str | None = None  # the reference image, relative to the run directory


@dataclass(frozen=True)
class T2ITask:
    """One text-to-image task as the proposer, scorer and judge see it."""

    kind: str  # generate | invert | personalize
    intent: str | None = None
    edit: str | None = None
    source_prompt: str | None = None
    reference: str | None = None  # RUN-relative path of the reference image
    start_prompts: tuple[str, ...] = ()

    def case(self, prompt: str, images: tuple[str, ...] = ()) -> JudgeCase:
        return JudgeCase(self.kind, prompt, images, self.intent, self.edit, self.source_prompt, self.reference)


@dataclass(frozen=True)
class Verdict:
    """The judge's structured reply."""

    feedback: str
    revised_prompt: str | None = None
    score: float | None = None  # the judge's own 0-10 rating
    matches: bool | None = None
    aspects: dict[str, str] = field(default_factory=dict)

    def to_metrics(self) -> dict[str, Any]:
        return {"feedback": self.feedback, "revised_prompt": self.revised_prompt, "judge_score": self.score,
                "matches": self.matches, "aspects": self.aspects}


@dataclass(frozen=True)
class JudgeReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class Judge(Protocol):
    """A multimodal chat model. The user text holds images as ``[image: PATH sha256=...]`` lines
    (PATH relative to ``root``): that text is what the run records; the backend sends the images."""

    name: str
    cache_id: str

    def chat(self, system: str, user: str, root: Path) -> JudgeReply: ...


@runtime_checkable
class Similarity(Protocol):
    name: str
    description: str

    def image_image(self, a: Image, b: Image) -> float: ...

    def image_text(self, image: Image, text: str) -> float: ...


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply (bare, fenced, or inside prose), or None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        start = chunk.find("{")
        while start != -1:
            try:
                obj, _ = json.JSONDecoder().raw_decode(chunk[start:])
            except json.JSONDecodeError:
                start = chunk.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = chunk.find("{", start + 1)
    return None


def parse_verdict(text: str) -> Verdict:
    """A judge reply as a Verdict; prose that holds no JSON is kept as the feedback."""
    obj = parse_json_object(text)
    if obj is None:
        return Verdict(feedback=text.strip()[:2000])
    revised = obj.get("revised_prompt") or obj.get("prompt")
    score = obj.get("score")
    try:
        score = None if score is None else max(0.0, min(10.0, float(score)))
    except (TypeError, ValueError):
        score = None
    aspects: dict[str, Any] = obj["aspects"] if isinstance(obj.get("aspects"), dict) else {}
    matches = obj.get("matches")
    return Verdict(feedback=str(obj.get("feedback") or "").strip()[:2000],
                   revised_prompt=" ".join(str(revised).split())[:1200] if revised else None,
                   score=score, matches=matches if isinstance(matches, bool) else None,
                   aspects={str(k): str(v)[:400] for k, v in aspects.items()})


@cache
def meta_prompt(name: str) -> MetaPrompt:
    """t2i/meta_prompts/NAME.txt, in the proposers' format: ``[section]`` blocks with ``$placeholders``."""
    text = resources.files("promptclimb.t2i").joinpath(f"meta_prompts/{name}.txt").read_text()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("[") and line.rstrip().endswith("]") and " " not in line.strip():
            current = sections.setdefault(line.strip()[1:-1], [])
        elif current is not None:
            current.append(line)
    return MetaPrompt(name, {k: "\n".join(v).strip("\n") for k, v in sections.items()})
