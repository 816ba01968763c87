"""A deterministic scorer computed from the template text: the loop runs end to end with no VLM.

Each split has ``n_items`` pseudo-images; whether the template "gets" image i right is a hash of
(template, split, i), with a mild preference for templates that name a photo, so scores differ,
tie at coarse steps like real few-shot accuracy, and are stable across runs and machines.
``fake:NAME`` is another fake backbone: the same hashes salted with NAME (transfer tests).
Image i belongs to class ``i % n_classes``; a wrong image is "taken for" a hashed other class, and
a hashed true-class probability gives a cross-entropy, so class feedback and fitness terms that
need them run too. Prompt sets (ensembles, per-class descriptions) score as one classifier: the
mean of the texts' hashed true-class probabilities (``score_set``). ``outcomes`` maps a template to
its per-image correctness on every split, as a '0'/'1' string of ``n_items`` (tests that need a
known answer, e.g. racing's); ``score_rows`` scores some images only (``row_calls`` and the log
record ``split[n]`` for them).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptclimb.candidate import Candidate, Score
from promptclimb.prompt_set import PromptSet
from promptclimb.vlm.base import ScorerConfigError, ScorerError

_GOOD_WORDS = ("photo", "picture", "image", "close-up", "a type of")


def _unit(*parts: object) -> float:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class FakeScorer:
    """Scores templates by hashing; ``fail_on`` substrings raise ScorerError (a VLM error)."""

    description = "fake: a deterministic hash of the template text (for tests; not a VLM)"

    def __init__(self, n_items: int = 40, delay_s: float = 0.0, fail_on: Sequence[str] = (),
                 log_path: Path | None = None, salt: str = "", n_classes: int = 8,
                 class_names: Sequence[str] = (), outcomes: Mapping[str, str] | None = None):
        self.name = f"fake:{salt}" if salt else "fake"
        self.salt = salt
        self.n_items = n_items
        self.delay_s = delay_s
        self.fail_on = tuple(fail_on)
        self.log_path = log_path  # every scoring appended here: lets tests see across processes
        self.n_classes = max(1, len(class_names) or n_classes)
        # Image i is of class i % n_classes; descriptions are matched to classes by these names.
        self.class_names = tuple(class_names) or tuple(f"class {c}" for c in range(self.n_classes))
        self.outcomes = dict(outcomes or {})
        bad = [t for t, bits in self.outcomes.items() if len(bits) != n_items or set(bits) - {"0", "1"}]
        if bad:
            raise ScorerConfigError(f"fake scorer outcomes for {bad[0]!r} must be {n_items} characters 0 or 1")
        self.calls: list[tuple[str, str]] = []
        self.row_calls: list[tuple[str, str, int]] = []

    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test")

    def split_labels(self, split: str) -> tuple[int, ...]:
        return tuple(i % self.n_classes for i in range(self.n_items))

    def score(self, template: str, split: str = "train") -> Score:
        self._check(template)
        self.calls.append((template, split))
        self._log(template, split)
        rows = range(self.n_items)
        items, p_true = self._outcomes(template, split, rows)
        return self._score(template, split, rows, items, p_true)

    def score_rows(self, template: str, split: str, rows: Sequence[int]) -> Score:
        self._check(template)
        self.row_calls.append((template, split, len(rows)))
        self._log(template, f"{split}[{len(rows)}]")
        items, p_true = self._outcomes(template, split, rows)
        return self._score(template, split, rows, items, p_true)

    def _check(self, template: str) -> None:
        Candidate(template)  # a scorer must never be handed an invalid template
        if any(s in template for s in self.fail_on):
            raise ScorerError(f"fake scorer refuses templates containing {self.fail_on}")

    def _log(self, key: str, split: str) -> None:
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(f"{split}\t{key}\n")
        if self.delay_s:
            time.sleep(self.delay_s)

    def _outcomes(self, text: str, split: str, rows: Sequence[int]) -> tuple[tuple[float, ...], list[float]]:
        """Per pseudo-image of ``rows``: right (1/0; from ``outcomes`` when given for the text), and a
        true-class probability above 0.5 exactly when right."""
        salt = (self.salt,) if self.salt else ()
        bias = 0.15 * sum(w in text.lower() for w in _GOOD_WORDS) + 0.5 * _unit(*salt, text, "bias")
        bits = self.outcomes.get(text)
        items = tuple(
            float(bits[i] == "1") if bits is not None else
            1.0 if _unit(*salt, text, split, i) < min(0.95, 0.25 + bias) else 0.0
            for i in rows
        )
        p_true = [0.5 + 0.5 * _unit(*salt, text, i, "p") if ok else 0.05 + 0.45 * _unit(*salt, text, i, "p")
                  for i, ok in zip(rows, items, strict=True)]
        return items, p_true

    def _score(self, key: str, split: str, rows: Sequence[int], items: tuple[float, ...],
               p_true: list[float]) -> Score:
        salt = (self.salt,) if self.salt else ()
        value = sum(items) / len(items) if items else 0.0
        k = self.n_classes
        labels = tuple(i % k for i in rows)
        wrong = [(lab + 1 + int(_unit(*salt, key, split, i, "as") * (k - 1))) % k
                 for i, lab in zip(rows, labels, strict=True)]
        preds = tuple(lab if ok or k == 1 else w for lab, ok, w in zip(labels, items, wrong, strict=True))
        cross_entropy = round(-sum(math.log(p) for p in p_true) / max(1, len(p_true)), 6)
        return Score(value, {"mean_margin": round(value - 0.5 + 0.01 * _unit(key), 6),
                             "cross_entropy": cross_entropy},
                     per_item=items, labels=labels, predictions=preds)

    def score_set(self, prompt_set: PromptSet, split: str = "train") -> Score:
        """A prompt set as one classifier: an image's true-class probability is the mean over its
        class's texts (each template, each description of that class), right when above 0.5; a
        plain set scores exactly as its template."""
        if prompt_set.is_plain:
            return self.score(prompt_set.templates[0], split)
        if any(f in t for t in prompt_set.templates for f in self.fail_on):
            raise ScorerError(f"fake scorer refuses templates containing {self.fail_on}")
        self.calls.append((prompt_set.key, split))
        self._log(prompt_set.key, split)
        unknown = sorted(set(prompt_set.class_texts) - set(self.class_names))
        if unknown:
            raise ScorerError(f"descriptions for classes the task does not have: {', '.join(unknown)[:200]}")
        k = self.n_classes
        rows = range(self.n_items)
        by_class = {name: prompt_set.texts_for(name, fill=False) for name in self.class_names[:k]}
        per_text = {t: self._outcomes(t, split, rows)[1] for t in sorted({t for ts in by_class.values() for t in ts})}
        p_true = []
        for i in rows:
            texts = by_class[self.class_names[i % k]]
            p_true.append(sum(per_text[t][i] for t in texts) / len(texts))
        items = tuple(1.0 if p > 0.5 else 0.0 for p in p_true)
        return self._score(prompt_set.key, split, rows, items, p_true)

    def score_ensemble(self, templates: Sequence[str], split: str = "train") -> Score:
        scores = [self.score(t, split) for t in templates]
        return max(scores, key=lambda s: s.value)


def build(arg: str, *, task: Any = None, cache_dir: Path | None = None,
          options: Mapping[str, Any] | None = None) -> FakeScorer:
    del cache_dir
    opts = dict(options or {})
    log = opts.get("log_path")
    info = getattr(task, "info", None)
    names = tuple(info.class_names) if info is not None and info.class_names else ()
    n_classes = int(opts.get("n_classes", len(names) or 8))
    return FakeScorer(int(opts.get("n_items", 40)), float(opts.get("delay_s", 0.0)),
                      tuple(opts.get("fail_on", ())), Path(log) if log else None, salt=arg,
                      n_classes=n_classes, class_names=names if len(names) == n_classes else (),
                      outcomes=opts.get("outcomes"))
