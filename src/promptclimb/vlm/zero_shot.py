"""Zero-shot classification as a Scorer: any backbone that embeds images and texts.

Scoring a template = fill it with each class name, embed (cached by text), normalise, cosine with
the cached normalised image features of the split, argmax. Image features are computed once per
(backbone, data set, split contents, preprocessing), so a new template costs its text encodings
plus one matrix product, and a template already seen costs a dictionary look-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from promptclimb.candidate import Candidate, Score
from promptclimb.prompt_set import PromptSet
from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm.base import ScorerConfigError, ScorerError
from promptclimb.vlm.extraction import extract_features
from promptclimb.vlm.features import FeatureCache, TextEmbeddingCache, cache_key


class Backbone(Protocol):
    """Embeds images and texts into one space (CLIP) or comparable spaces (ConSE)."""

    id: str  # names the weights: part of every cache key
    preprocess_id: str  # names the image preprocessing: part of the image cache key
    description: str

    def encode_images(self, images: list[Any]) -> np.ndarray: ...

    # Optional (see extraction.py): load() to load models before extraction's progress bar;
    # prepare_image(image) in worker processes and encode_prepared(stacked batch) here.

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def build_zero_shot_weights(encode: Callable[[list[str]], np.ndarray], class_names: Sequence[str],
                            templates: Sequence[str]) -> np.ndarray:
    """Classes x dim: per class, the renormalised mean of its normalised prompt embeddings
    (CLIP's prompt ensembling; one template = plain normalised embeddings)."""
    cands = [Candidate(t) for t in templates]
    per_template = [normalise(encode([c.fill(name) for name in class_names])) for c in cands]
    return normalise(np.mean(per_template, axis=0))


def build_set_weights(encode: Callable[[list[str]], np.ndarray], class_names: Sequence[str],
                      prompt_set: PromptSet) -> np.ndarray:
    """Classes x dim: per class, the renormalised mean of the normalised embeddings of all its
    texts (every template filled with its name, plus its descriptions: prompt_set.py)."""
    unknown = sorted(set(prompt_set.class_texts) - set(class_names))
    if unknown:
        raise ScorerError(f"descriptions for classes the task does not have: {', '.join(unknown)[:200]}")
    texts = [prompt_set.texts_for(name) for name in class_names]
    flat = normalise(encode([t for group in texts for t in group]))
    rows, start = [], 0
    for group in texts:
        rows.append(flat[start:start + len(group)].mean(axis=0))
        start += len(group)
    return normalise(np.stack(rows))


def accuracy_score(image_features: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                   class_names: Sequence[str]) -> Score:
    """Accuracy, per-class accuracy, mean true-class margin and per-image correctness."""
    logits = image_features @ weights.T
    pred = logits.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    n = len(labels)
    true = logits[np.arange(n), labels]
    cross_entropy = _cross_entropy(logits, labels) if n else 0.0
    if logits.shape[1] > 1:
        logits[np.arange(n), labels] = -np.inf  # in place: logits is ours and pred is already taken
        margin = true - logits.max(axis=1)
    else:
        margin = true
    counts = np.bincount(labels.astype(np.int64), minlength=len(class_names))
    hits = np.bincount(labels.astype(np.int64), weights=correct, minlength=len(class_names))
    per_class = {name: float(hits[c] / counts[c]) for c, name in enumerate(class_names) if counts[c]}
    return Score(float(correct.mean()) if n else 0.0,
                 {"mean_margin": float(margin.mean()) if n else 0.0, "cross_entropy": cross_entropy},
                 per_class, tuple(correct.tolist()), tuple(int(v) for v in labels),
                 tuple(int(v) for v in pred))


# CLIP's learned logit scale (100): cross-entropy of softmax(scale * cosine), as ProAPO's fitness uses.
LOGIT_SCALE = 100.0


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    z = LOGIT_SCALE * logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def extraction_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """ZeroShotScorer's keyword arguments from scorer options: batch_size, skip_unreadable, workers."""
    workers = options.get("workers")
    return {"batch_size": int(options.get("batch_size", 32)),
            "skip_unreadable": bool(options.get("skip_unreadable", False)),
            "workers": None if workers is None else int(workers)}


class ZeroShotScorer:
    """A Scorer over a ClassificationTask and a Backbone, with feature and text caches."""

    def __init__(self, name: str, backbone: Backbone, task: Any, cache_dir: Path, *,
                 batch_size: int = 32, skip_unreadable: bool = False, workers: int | None = None) -> None:
        if not isinstance(task, ClassificationTask):
            raise ScorerConfigError(f"scorer {name} needs an image classification task, not {task.info.name!r}")
        self.name = name
        self.backbone = backbone
        self.description = backbone.description
        self.task = task
        self.batch_size = batch_size
        self.skip_unreadable = skip_unreadable
        self.workers = workers  # image decode processes (None: one per core but one)
        self.features = FeatureCache(cache_dir)
        self.texts = TextEmbeddingCache(cache_dir, backbone.id)
        self.skipped: dict[str, list[str]] = {}
        self._images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._scores: dict[tuple[tuple[str, ...], str], Score] = {}
        self._lock = threading.Lock()

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s, items in self.task.splits.items() if items)

    # -- images ---------------------------------------------------------------------------
    def image_features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(normalised features, labels) of a split, computed once and cached on disk."""
        if split not in self._images:
            items = self.task.splits.get(split, ())
            if not items:
                raise ScorerError(f"the task has no {split!r} split")
            ids = [i.id for i in items]
            key = cache_key(backbone=self.backbone.id, preprocess=self.backbone.preprocess_id,
                            source=self.task.source.fingerprint, split=self.task.split_key(split))
            feats = self.features.load(key, ids)
            labels = np.array([i.label for i in items])
            if feats is None:
                feats, kept = self._encode(ids)
                if len(kept) < len(ids):
                    keep = set(kept)
                    labels = np.array([i.label for i in items if i.id in keep])
                else:
                    self.features.save(key, ids, feats)
            self._images[split] = (normalise(feats), labels)
        return self._images[split]

    def _encode(self, ids: list[str]) -> tuple[np.ndarray, list[str]]:
        skipped: list[str] = []

        def on_error(item_id: str, message: str) -> None:
            if not self.skip_unreadable:
                raise ScorerConfigError(f"{message} (or set scorer_options.skip_unreadable=true)")
            skipped.append(item_id)

        feats, kept = extract_features(self.backbone, self.task.source, ids, batch_size=self.batch_size,
                                       workers=self.workers, on_error=on_error, label=f" · {self.name}")
        if skipped:
            self.skipped.setdefault("images", []).extend(skipped)
        if not kept:
            raise ScorerConfigError("no readable image in the split")
        return feats, kept

    # -- texts and scores ------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        found = self.texts.get_many(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = np.asarray(self.backbone.encode_texts(missing), dtype=np.float32)
            new = dict(zip(missing, fresh, strict=True))
            self.texts.put_many(new)
            found.update(new)
        return np.stack([found[t] for t in texts])

    def score(self, template: str, split: str = "train") -> Score:
        return self.score_ensemble([template], split)

    def score_set(self, prompt_set: PromptSet, split: str = "train") -> Score:
        """A prompt set as one classifier (prompt_set.py); a plain set scores as its template."""
        if not prompt_set.class_texts:
            return self.score_ensemble(prompt_set.templates, split)
        return self._scored(((prompt_set.key,), split), lambda: build_set_weights(
            self.encode_texts, self.task.class_names, prompt_set))

    def split_labels(self, split: str) -> tuple[int, ...]:
        return tuple(int(v) for v in self.image_features(split)[1])

    def score_rows(self, template: str, split: str, rows: Sequence[int]) -> Score:
        """The template on some rows of the split (features cached: the cost is one matrix product)."""
        with self._lock:
            feats, labels = self.image_features(split)
            index = np.asarray(rows, dtype=np.int64)
            weights = build_zero_shot_weights(self.encode_texts, self.task.class_names, [template])
            return accuracy_score(feats[index], labels[index], weights, self.task.class_names)

    def score_ensemble(self, templates: Sequence[str], split: str = "train") -> Score:
        return self._scored((tuple(templates), split), lambda: build_zero_shot_weights(
            self.encode_texts, self.task.class_names, templates))

    def _scored(self, key: tuple[tuple[str, ...], str], weights: Callable[[], np.ndarray]) -> Score:
        """The Score of a classifier on a split, computed once per key (templates or set key, split)."""
        with self._lock:
            if key not in self._scores:
                feats, labels = self.image_features(key[1])
                self._scores[key] = accuracy_score(feats, labels, weights(), self.task.class_names)
            return self._scores[key]
