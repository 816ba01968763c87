"""Reading per-class descriptions out of an LLM reply: lines of the form "class: description".

LLM text is untrusted. A line is matched to the longest class name it starts with (case folded,
after bullets, quotes and bold marks), then a ``:`` or a dash, so class names holding colons,
braces or quotes match too; a line naming no class of the task, or a class not asked about, is
rejected with a reason. A description that does not name its class gets the name in front
("lion: a large tawny cat"), so every text of a class names it. Each description is cleaned as
prompt_set.py requires (one line, bounded, no control characters); at most ``limit`` a class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from promptclimb.candidate import CandidateRejected
from promptclimb.prompt_set import clean_description

_LEAD = re.compile(r"^\s*(?:[-*•·>#]+|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)](?=\s))?\s*[*_\"'`“”‘’]*\s*")
_SEPARATOR = re.compile(r"^[*_\"'`“”‘’\s]*(?::|-|–|—)\s*")
_QUOTES = "\"'`“”‘’*_ "


@dataclass(frozen=True)
class ParsedDescriptions:
    """Descriptions found per class (in reply order) and the lines rejected, with why."""

    texts: dict[str, list[str]]
    rejections: tuple[tuple[str, str], ...]

    @property
    def reason(self) -> str:
        if not self.rejections:
            return "empty reply"
        return "; ".join(sorted({r for _, r in self.rejections}))[:300]


def _match(line: str, names: Sequence[str]) -> tuple[str, str] | None:
    """(class name, the rest after its separator), the longest name that fits first."""
    folded = line.casefold()
    for name in sorted(names, key=len, reverse=True):
        if folded.startswith(name.casefold()):
            rest = line[len(name):]
            sep = _SEPARATOR.match(rest)
            if sep:
                return name, rest[sep.end():]
    return None


def parse_descriptions(text: str, class_names: Sequence[str], wanted: Sequence[str],
                       limit: int = 5) -> ParsedDescriptions:
    """Every usable "class: description" line of a reply, for the classes in ``wanted``."""
    found: dict[str, list[str]] = {}
    rejected: list[tuple[str, str]] = []
    asked = set(wanted)
    for raw in (text or "").splitlines():
        line = _LEAD.sub("", raw, count=1).strip()
        if not line:
            continue
        hit = _match(line, class_names)
        if hit is None:
            rejected.append((raw.strip()[:200], "a line that names no class of the task"))
            continue
        name, rest = hit
        if name not in asked:
            rejected.append((raw.strip()[:200], f"a class not asked about: {name}"))
            continue
        desc = rest.strip().strip(_QUOTES).strip()
        if desc and name.casefold() not in desc.casefold():
            desc = f"{name}: {desc}"
        try:
            cleaned = clean_description(desc)
        except CandidateRejected as err:
            rejected.append((raw.strip()[:200], str(err)))
            continue
        texts = found.setdefault(name, [])
        if cleaned not in texts and len(texts) < limit:
            texts.append(cleaned)
    return ParsedDescriptions(found, tuple(rejected))


__all__ = ["ParsedDescriptions", "parse_descriptions"]
