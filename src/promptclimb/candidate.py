"""Candidates, scores and trials: the records that flow through the loop.

A Candidate is a prompt template with exactly one ``{}`` for the class name. LLM text is
untrusted, so :func:`parse_candidates` normalises what it can (bullets, quotes, ``{0}``,
``[CLASS]``...) and rejects the rest with a reason; nothing it accepts can break ``.format``.
A Trial is the frozen record of one proposal: what was asked, what came back, how it scored.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

MAX_TEMPLATE_CHARS = 160
MAX_WORDS = 30
# Marks that reorder how text is shown (a template that reads one way and is another).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Placeholder spellings LLMs use instead of ``{}``: {0}, {name}, {class name}, [CLASS], <label>.
_PLACEHOLDER_RE = re.compile(
    r"\{\{\s*\}\}|\{\s*[\w .\-]{0,20}\s*\}|\[\s*(?:class|classname|class name|label|name|object|"
    r"category|cls)\s*\]|<\s*(?:class|classname|class name|label|name|object|category|cls)\s*>",
    re.IGNORECASE,
)
_BULLET_RE = re.compile(r"^\s*(?:[-*•·>#]+|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)])\s+")
_LABEL_RE = re.compile(
    r"^\s*(?:new\s+|improved\s+|better\s+|revised\s+)?(?:prompt|template|answer|suggestion)"
    r"\s*\d*\s*[:=-]\s*",
    re.IGNORECASE,
)
# A score the model copied from the list it was shown: "... (82.5%)", "-> 82%", "score: 0.8".
_TRAILING_SCORE_RE = re.compile(
    r"\s*(?:[-–—>:=|,]+\s*)?\(?\s*(?:score|acc(?:uracy)?)?\s*[:=]?\s*\d{1,3}(?:\.\d+)?\s*%?\s*\)?\s*$",
    re.IGNORECASE,
)
# Chatter before the template: "Sure! Here is a better template: a photo of a {}."
_PREAMBLE_RE = re.compile(
    r"^[^{}]*\b(?:template|prompt|here|answer|suggest\w*|try|option)\b[^{}:]*:\s*", re.IGNORECASE
)
_QUOTES = "\"'`“”‘’«»"
_SPLITTERS = (re.compile(r"[\"“”`]\s*[,;|/]?\s*[\"“”`]"), re.compile(r"\s*(?:\|{1,2}|;|\s/\s)\s*"),
              re.compile(r",\s+(?=\S)"))


class CandidateRejected(ValueError):
    """An LLM reply line that cannot be turned into a template; ``str(err)`` is the reason."""


@dataclass(frozen=True, order=True)
class Candidate:
    """A validated template: exactly one ``{}``, no other braces, bounded length."""

    template: str

    def __post_init__(self) -> None:
        t = self.template
        if t.count("{}") != 1 or t.replace("{}", "", 1).count("{") or t.replace("{}", "").count("}"):
            raise CandidateRejected(f"template must contain exactly one {{}} and no other braces: {t!r}")
        if len(t) > MAX_TEMPLATE_CHARS:
            raise CandidateRejected(f"template longer than {MAX_TEMPLATE_CHARS} characters")
        if any(c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" for c in t):
            raise CandidateRejected("control characters or right-to-left marks in the template")

    def fill(self, class_name: str) -> str:
        """The prompt for one class (class names may hold braces: no ``.format`` parsing here)."""
        head, tail = self.template.split("{}", 1)
        return f"{head}{class_name}{tail}"

    def __str__(self) -> str:
        return self.template


def _clean_line(line: str) -> str:
    s = line.strip()
    for _ in range(3):  # bullets, labels and quotes nest: '1. Template: "a {}"'
        before = s
        s = _BULLET_RE.sub("", s)
        s = _LABEL_RE.sub("", s)
        s = _PREAMBLE_RE.sub("", s)
        s = s.strip().strip(_QUOTES).strip()
        if s == before:
            break
    s = _PLACEHOLDER_RE.sub("{}", s)
    s = _TRAILING_SCORE_RE.sub("", s) if "{}" in s and not s.endswith("{}") else s
    s = s.strip().strip(_QUOTES).strip()
    return re.sub(r"\s+", " ", s)


# A word: letters, with inner apostrophes or hyphens ("don't", "close-up"); shared with filters.py.
WORD_RE = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*", re.UNICODE)


def word_key(template: str) -> str:
    """A template's words only, lower case, the slot marked: templates that differ only in case,
    spacing or punctuation share a key ("a photo of a {}" and "A photo of a {}!")."""
    return " ".join(WORD_RE.findall(template.lower().replace("{}", " slot ")))


def parse_template(text: str) -> Candidate:
    """Normalise one line of untrusted text into a Candidate or raise CandidateRejected."""
    if not isinstance(text, str):
        raise CandidateRejected("not text")
    if "\n" in text.strip():
        raise CandidateRejected("several lines; use parse_candidates")
    s = _clean_line(text)
    if not s:
        raise CandidateRejected("empty line")
    n = s.count("{}")
    if n == 0:
        raise CandidateRejected("no {} placeholder for the class name")
    if n > 1:
        raise CandidateRejected("more than one {} placeholder")
    if s.replace("{}", "").count("{") or s.replace("{}", "").count("}"):
        raise CandidateRejected("stray or unbalanced braces")
    if len(s) > MAX_TEMPLATE_CHARS or len(s.split()) > MAX_WORDS:
        raise CandidateRejected(f"too long (over {MAX_TEMPLATE_CHARS} characters or {MAX_WORDS} words)")
    if not any(c.isalnum() for c in s.replace("{}", "")) and s != "{}":
        raise CandidateRejected("no words around the placeholder")
    return Candidate(s)


def _split_several(line: str) -> list[str]:
    """Split a line holding several templates; the first splitter that yields one {} each wins."""
    cleaned = _PLACEHOLDER_RE.sub("{}", line)
    if cleaned.count("{}") <= 1:
        return [line]
    for splitter in _SPLITTERS:
        parts = [p for p in splitter.split(cleaned) if p.strip(" " + _QUOTES)]
        if len(parts) > 1 and all(p.count("{}") == 1 for p in parts):
            return parts
    return [line]


@dataclass(frozen=True)
class ParseResult:
    """What one LLM reply yielded: accepted candidates (in order, deduplicated) and rejections."""

    candidates: tuple[Candidate, ...]
    rejections: tuple[tuple[str, str], ...]  # (line, reason)

    @property
    def reason(self) -> str:
        """One line summarising why nothing usable came back."""
        if not self.rejections:
            return "empty reply"
        return "; ".join(sorted({r for _, r in self.rejections}))[:300]


def parse_candidates(text: str, limit: int | None = None) -> ParseResult:
    """Every template in a free-form reply, one or more per line, deduplicated in order."""
    found: list[Candidate] = []
    rejected: list[tuple[str, str]] = []
    for raw in (text or "").splitlines():
        if not raw.strip():
            continue
        for piece in _split_several(raw):
            try:
                cand = parse_template(piece)
            except CandidateRejected as err:
                rejected.append((piece.strip()[:200], str(err)))
                continue
            if cand not in found:
                found.append(cand)
    if limit is not None:
        found = found[:limit]
    return ParseResult(tuple(found), tuple(rejected))


@dataclass(frozen=True)
class Score:
    """What a scorer says of one template on one split. ``value`` is in [0, 1] (accuracy)."""

    value: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    per_class: Mapping[str, float] | None = None
    # Per-item outcomes (1/0 correctness, or margins) for selection rules that resample items.
    per_item: tuple[float, ...] | None = None
    # Per-image true and predicted class indices, where the scorer knows them (class feedback).
    labels: tuple[int, ...] | None = None
    predictions: tuple[int, ...] | None = None


class TrialState(StrEnum):
    COMPLETE = "complete"
    FAILED = "failed"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Trial:
    """One proposal and its outcome; never mutated once written to the store."""

    number: int
    state: TrialState
    template: str | None
    raw: str = ""
    proposer: str = ""
    restart: int = 0
    reset: int = 0
    iteration: int = 0
    train_score: float | None = None
    val_score: float | None = None
    test_score: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    duplicate_of: int | None = None
    exchange_id: int | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float = field(default_factory=time.time)

    def with_(self, **changes: Any) -> Trial:
        return replace(self, **changes)

    @property
    def ok(self) -> bool:
        return self.state is not TrialState.FAILED and self.train_score is not None
