"""A prompt set: the candidate that is more than one template.

A PromptSet is scored as one classifier: per class, the renormalised mean of the normalised text
embeddings of all its texts. How a class's texts come from the templates and its descriptions
(``class_texts``) is the set's ``combine`` mode:
- ``beside`` (the default; CuPL's combined mode): every template filled with the class name, plus
  each description as one more text of the class;
- ``descriptions`` (CuPL's own): the descriptions alone;
- ``product`` (template x descriptions): each filled template followed by each description
  ("a photo of a lion. a lion, a large tawny cat with a mane").
A description is a plain sentence used as it is (it should name the class); braces in it mean
nothing. Classes without descriptions keep the templates only, whatever the mode.

A set's ``key`` is its canonical, deterministic string: the template itself for a plain template
(``PromptSet(("a photo of a {}.",))``), so every store, selection and resume of single templates
is unchanged; otherwise compact sorted JSON ``{"class_texts":{...},"templates":[...]}``. Templates
and each class's descriptions are deduplicated and sorted (the mean does not depend on order), so
the same set always has the same key. No template starts with ``{"`` (a template's only brace is
``{}``), so a key tells which it is. Trials keep the key in their ``template`` field.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

from promptclimb.candidate import BIDI_CONTROLS, Candidate, CandidateRejected

MAX_DESCRIPTION_CHARS = 300
SET_PREFIX = '{"'
CombineMode = Literal["beside", "descriptions", "product"]
COMBINE_MODES: tuple[str, ...] = get_args(CombineMode)


def clean_description(text: str) -> str:
    """One description, whitespace collapsed; CandidateRejected if empty, too long, or holding
    control characters or right-to-left marks."""
    if not isinstance(text, str):
        raise CandidateRejected("a description must be text")
    s = " ".join(text.split())
    if not s:
        raise CandidateRejected("empty description")
    if len(s) > MAX_DESCRIPTION_CHARS:
        raise CandidateRejected(f"description longer than {MAX_DESCRIPTION_CHARS} characters")
    if any(c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" for c in s):
        raise CandidateRejected("control characters or right-to-left marks in a description")
    return s


@dataclass(frozen=True, eq=False)
class PromptSet:
    """Templates (each with one ``{}``) plus optional per-class descriptions; equal sets share a key."""

    templates: tuple[str, ...]
    class_texts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    combine: CombineMode = "beside"  # the module docstring; checked, as sets come from stored JSON

    def __post_init__(self) -> None:
        if isinstance(self.templates, str):
            raise CandidateRejected("templates must be a sequence of templates, not one string")
        templates = tuple(sorted({Candidate(t).template for t in self.templates}))
        if not templates:
            raise CandidateRejected("a prompt set needs at least one template")
        texts: dict[str, tuple[str, ...]] = {}
        for name in sorted(self.class_texts):
            if not isinstance(name, str) or not name:
                raise CandidateRejected("class names must be non-empty text")
            cleaned = tuple(sorted({clean_description(d) for d in self.class_texts[name]}))
            if cleaned:
                texts[name] = cleaned
        if self.combine not in COMBINE_MODES:
            raise CandidateRejected(f"combine must be one of {', '.join(COMBINE_MODES)}, not {self.combine!r}")
        object.__setattr__(self, "templates", templates)
        object.__setattr__(self, "class_texts", MappingProxyType(texts))

    @classmethod
    def of(cls, templates: Iterable[str], class_texts: Mapping[str, Iterable[str]] | None = None,
           combine: CombineMode = "beside") -> PromptSet:
        return cls(tuple(templates), {k: tuple(v) for k, v in (class_texts or {}).items()}, combine)

    @property
    def is_plain(self) -> bool:
        """One template and no descriptions: the simple case, keyed by the template itself."""
        return len(self.templates) == 1 and not self.class_texts

    @property
    def key(self) -> str:
        if self.is_plain:
            return self.templates[0]
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"templates": list(self.templates),
                               "class_texts": {k: list(v) for k, v in self.class_texts.items()}}
        # Beside is left out so that sets stored before the modes keep their keys; without
        # descriptions the mode changes nothing, so it is left out too (one key, one classifier).
        if self.combine != "beside" and self.class_texts:
            out["combine"] = self.combine
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromptSet:
        return cls.of(data.get("templates") or (), data.get("class_texts") or {}, data.get("combine") or "beside")

    def texts_for(self, class_name: str, fill: bool = True) -> list[str]:
        """Every text of one class, by the combine mode; ``fill=False`` leaves the templates'
        ``{}`` unfilled (a fake scorer's texts)."""
        filled = [Candidate(t).fill(class_name) if fill else t for t in self.templates]
        own = self.class_texts.get(class_name, ())
        if not own:
            return filled
        if self.combine == "descriptions":
            return list(own)
        if self.combine == "product":
            return [f"{f} {d}" for f in filled for d in own]
        return [*filled, *own]

    def with_texts(self, class_texts: Mapping[str, Iterable[str]]) -> PromptSet:
        """The same templates and mode; these classes' descriptions replaced (others kept)."""
        merged = {**{k: tuple(v) for k, v in self.class_texts.items()}, **{k: tuple(v) for k, v in class_texts.items()}}
        return PromptSet(self.templates, merged, self.combine)

    def without_texts(self, names: Iterable[str]) -> PromptSet:
        """The same templates and mode; these classes back to the templates alone."""
        gone = set(names)
        return PromptSet(self.templates, {k: v for k, v in self.class_texts.items() if k not in gone}, self.combine)

    def short(self, width: int = 100) -> str:
        """A readable one-line form: "ensemble of 3: a {}. | a photo of a {}. | ..." or
        "a photo of a {}. + descriptions for 10 classes"."""
        head = self.templates[0] if len(self.templates) == 1 else \
            f"ensemble of {len(self.templates)}: " + " | ".join(self.templates)
        if len(head) > width:
            head = head[: width - 3].rstrip() + "..."
        if self.class_texts:
            n = len(self.class_texts)
            head += f" + descriptions for {n} class{'es' if n != 1 else ''}"
            head += {"beside": "", "descriptions": " (descriptions only)", "product": " (template x descriptions)"}[
                self.combine]
        return head

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PromptSet) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.key


def is_set_key(text: str | None) -> bool:
    """Whether a trial's ``template`` field holds a prompt set's key (not a plain template)."""
    return bool(text) and str(text).startswith(SET_PREFIX)


def parse_set_key(text: str | None) -> PromptSet | None:
    """The prompt set a stored key stands for, or None for a plain template (or prompt)."""
    if not text or not is_set_key(text):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "templates" not in data:
        return None
    return PromptSet.from_json(data)


def short_form(text: str | None, width: int = 100) -> str:
    """What to show for a trial's ``template`` field: the template, or a set's short form."""
    found = parse_set_key(text)
    return found.short(width) if found is not None else (text or "")


def prompt_json(text: str | None) -> dict[str, Any] | None:
    """A stored key as the full set (templates and descriptions), or None for a plain template."""
    found = parse_set_key(text)
    return None if found is None else found.to_json()


__all__ = ["COMBINE_MODES", "MAX_DESCRIPTION_CHARS", "CombineMode", "PromptSet", "clean_description", "is_set_key",
           "parse_set_key", "prompt_json", "short_form"]
