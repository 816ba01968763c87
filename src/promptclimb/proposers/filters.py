"""Degenerate-candidate filter: what a weak LLM emits when it loses the thread.

Small local models drift into self-copying loops ("a a a a, {}, ...") and fragments of non-words;
scored, these waste budget and then fill the list of negative examples, which feeds the loop.
A rejected candidate is never scored; the LLM gets a corrective message instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher
from itertools import pairwise

from promptclimb.candidate import WORD_RE, word_key

_TOKEN = re.compile(r"\S+")
# Short function words may repeat ("a photo of a {}, a type of ..."), content words may not.
_FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "for", "by", "from", "is", "this",
     "that", "it", "its"])


def degeneracy(template: str, shown: Iterable[str] = (), near_copy_ratio: float = 0.97) -> str | None:
    """Why a template is degenerate, or None. ``shown`` are templates the LLM was shown."""
    body = template.replace("{}", " ")
    tokens = _TOKEN.findall(body)
    words = [w.lower() for w in WORD_RE.findall(template.replace("{}", " SLOT "))]
    if any(a == b for a, b in pairwise(words)):
        return "repeated words"
    counts = Counter(w for w in words if w not in _FUNCTION_WORDS and w != "slot")
    if counts and max(counts.values()) >= 3:
        return "repeated words"
    if tokens:
        wordy = sum(bool(WORD_RE.fullmatch(t.strip(".,;:!?\"'()-"))) for t in tokens)
        if wordy / len(tokens) < 0.6:
            return "non-words"
    if any(len(w) > 24 for w in words):
        return "non-words"
    norm = word_key(template)
    for other in shown:
        if other == template:
            continue  # an exact copy is a duplicate: answered from the store, and the LLM is told
        other_norm = word_key(other)
        if norm == other_norm or SequenceMatcher(None, norm, other_norm).ratio() >= near_copy_ratio:
            return f"near-copy of {other!r}"
    return None
