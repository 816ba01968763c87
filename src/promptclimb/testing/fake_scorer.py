"""A deterministic scorer computed from the template text: the loop runs end to end with no VLM.

Each split has ``n_items`` pseudo-images; whether the template "gets" image i right is a hash of
(template, split, i), with a mild preference for templates that name a photo, so scores differ,
tie at coarse steps like real few-shot accuracy, and are stable across runs and machines.
``fake:NAME`` is another fake backbone: the same hashes salted with NAME (transfer tests).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptclimb.candidate import Candidate, Score
from promptclimb.vlm.base import ScorerError

_GOOD_WORDS = ("photo", "picture", "image", "close-up", "a type of")


def _unit(*parts: object) -> float:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class FakeScorer:
    """Scores templates by hashing; ``fail_on`` substrings raise ScorerError (a VLM error)."""

    description = "fake: a deterministic hash of the template text (for tests; not a VLM)"

    def __init__(self, n_items: int = 40, delay_s: float = 0.0, fail_on: Sequence[str] = (),
                 log_path: Path | None = None, salt: str = ""):
        self.name = f"fake:{salt}" if salt else "fake"
        self.salt = salt
        self.n_items = n_items
        self.delay_s = delay_s
        self.fail_on = tuple(fail_on)
        self.log_path = log_path  # every scoring appended here: lets tests see across processes
        self.calls: list[tuple[str, str]] = []

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test")

    def score(self, template: str, split: str = "train") -> Score:
        Candidate(template)  # a scorer must never be handed an invalid template
        if any(s in template for s in self.fail_on):
            raise ScorerError(f"fake scorer refuses templates containing {self.fail_on}")
        self.calls.append((template, split))
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(f"{split}\t{template}\n")
        if self.delay_s:
            time.sleep(self.delay_s)
        salt = (self.salt,) if self.salt else ()
        bias = 0.15 * sum(w in template.lower() for w in _GOOD_WORDS) + 0.5 * _unit(*salt, template, "bias")
        items = tuple(
            1.0 if _unit(*salt, template, split, i) < min(0.95, 0.25 + bias) else 0.0
            for i in range(self.n_items)
        )
        value = sum(items) / len(items)
        return Score(value, {"mean_margin": round(value - 0.5 + 0.01 * _unit(template), 6)},
                     per_item=items)

    def score_ensemble(self, templates: Sequence[str], split: str = "train") -> Score:
        scores = [self.score(t, split) for t in templates]
        return max(scores, key=lambda s: s.value)


def build(arg: str, *, task: Any = None, cache_dir: Path | None = None,
          options: Mapping[str, Any] | None = None) -> FakeScorer:
    del task, cache_dir
    opts = dict(options or {})
    log = opts.get("log_path")
    return FakeScorer(int(opts.get("n_items", 40)), float(opts.get("delay_s", 0.0)),
                      tuple(opts.get("fail_on", ())), Path(log) if log else None, salt=arg)
