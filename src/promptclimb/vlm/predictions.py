"""The ``predictions`` scorer: a true black box that only says which class it predicts for each image.

Score = accuracy (and per-class accuracy, per-image correctness); there are no logits, so no
``mean_margin`` and margin-based tie-breaks fall back to pure accuracy. Predictions are cached in
memory per (template, split). Three ways to reach the box:

``predictions`` + ``options["predict"]``, or ``predictions:package.module:function``
    A Python callable ``predict(template, class_names, images) -> list``; ``images`` is a list of
    :class:`ImageRef` (``.id``, and ``.image()`` which loads the RGB PIL image).

``predictions:http://host:port/path`` (or https)
    For each batch of at most ``batch_size`` (default 64) images, one ``POST`` with
    ``Content-Type: application/json`` and the body::

        {"template": "a photo of a {}.", "class_names": ["cat", "dog"],
         "images": [{"id": "cat/1.jpg", "png_base64": "<base64 of the image as PNG>"}, ...]}

    The endpoint answers ``200`` with ``{"predictions": [p_0, p_1, ...]}``, one per image in the
    order sent, each a class index (int) or a class name (string).

A prediction naming no class counts as wrong (``metrics["unknown_predictions"]`` counts them); an
out-of-range index, a wrong count, a non-200 status, bad JSON, a timeout or an exception in the
callable raise ScorerError (the trial is recorded as failed). An endpoint that cannot be reached
when the scorer is built raises ScorerConfigError. Predictions are kept per image, so scoring some
rows (racing) and later the whole split asks the box about each image once.

Options: ``predict``, ``batch_size``, ``timeout_s`` (60), ``headers`` (a dict of extra HTTP headers).
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.candidate import Candidate, Score
from promptclimb.tasks.classification import ClassificationTask, ImageSource
from promptclimb.vlm.base import ScorerConfigError, ScorerError
from promptclimb.vlm.hf_clip import reachable

Predict = Callable[[str, list[str], list["ImageRef"]], Sequence[Any]]


@dataclass(frozen=True)
class ImageRef:
    """One image of the split: its id in the task's source, and its pixels on demand."""

    id: str
    source: ImageSource

    def image(self) -> Any:
        return self.source.load(self.id)


class HttpPredictor:
    """``predict`` over the JSON protocol in the module docstring."""

    def __init__(self, url: str, batch_size: int = 64, timeout_s: float = 60.0,
                 headers: Mapping[str, str] | None = None) -> None:
        if not reachable(url, timeout=min(timeout_s, 5.0)):
            raise ScorerConfigError(f"prediction endpoint {url} is unreachable: start the server or fix the URL")
        self.url = url
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._png: dict[str, str] = {}  # image id -> base64 PNG, encoded once

    def _png_base64(self, ref: ImageRef) -> str:
        if ref.id not in self._png:
            buf = io.BytesIO()
            ref.image().save(buf, format="PNG")
            self._png[ref.id] = base64.b64encode(buf.getvalue()).decode("ascii")
        return self._png[ref.id]

    def __call__(self, template: str, class_names: list[str], images: list[ImageRef]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start: start + self.batch_size]
            body = {"template": template, "class_names": class_names,
                    "images": [{"id": r.id, "png_base64": self._png_base64(r)} for r in batch]}
            request = urllib.request.Request(self.url, json.dumps(body).encode(), self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    reply = json.loads(response.read())
            except urllib.error.HTTPError as err:
                raise ScorerError(f"prediction endpoint answered {err.code}: {err.read()[:200]!r}") from None
            except (OSError, ValueError) as err:
                raise ScorerError(f"prediction endpoint {self.url} failed: {err}") from None
            preds = reply.get("predictions") if isinstance(reply, dict) else None
            if not isinstance(preds, list) or len(preds) != len(batch):
                raise ScorerError(f"prediction endpoint must answer {{\"predictions\": [...]}} with {len(batch)} "
                                  f"entries, got {str(reply)[:200]}")
            out.extend(preds)
        return out


def _labels(preds: Sequence[Any], class_names: Sequence[str], n: int) -> tuple[np.ndarray, int]:
    """Class indices (-1 for a name that is no class) and how many names matched no class."""
    if len(preds) != n:
        raise ScorerError(f"the predictor returned {len(preds)} predictions for {n} images")
    index = {name: i for i, name in enumerate(class_names)}
    folded = {name.strip().casefold(): i for i, name in enumerate(class_names)}
    out, unknown = np.empty(n, dtype=np.int64), 0
    for k, p in enumerate(preds):
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            if not 0 <= int(p) < len(class_names):
                raise ScorerError(f"predicted class index {p} is outside 0..{len(class_names) - 1}")
            out[k] = int(p)
        elif isinstance(p, str):
            out[k] = index.get(p, folded.get(p.strip().casefold(), -1))
            unknown += int(out[k] < 0)
        else:
            raise ScorerError(f"a prediction must be a class index or name, got {p!r}")
    return out, unknown


class PredictionScorer:
    """A Scorer over a black box that returns one label per image."""

    def __init__(self, name: str, predict: Predict, task: Any, description: str) -> None:
        if not isinstance(task, ClassificationTask):
            raise ScorerConfigError(f"scorer {name} needs an image classification task, not {task.info.name!r}")
        self.name = name
        self.description = description
        self.task = task
        self.predict = predict
        self._cache: dict[tuple[str, str], Score] = {}
        self._rows: dict[tuple[str, str], dict[int, int]] = {}  # (template, split) -> row -> predicted class
        self._lock = threading.Lock()

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s, items in self.task.splits.items() if items)

    def split_labels(self, split: str) -> tuple[int, ...]:
        return tuple(i.label for i in self.task.splits.get(split, ()))

    def score(self, template: str, split: str = "train") -> Score:
        with self._lock:
            if (template, split) in self._cache:
                return self._cache[(template, split)]
        score = self.score_rows(template, split, range(len(self.task.splits.get(split, ()))))
        with self._lock:
            self._cache[(template, split)] = score
        return score

    def score_rows(self, template: str, split: str, rows: Sequence[int]) -> Score:
        """The template on these rows; only rows not yet predicted for it are sent to the box."""
        Candidate(template)
        items = self.task.splits.get(split, ())
        if not items:
            raise ScorerError(f"the task has no {split!r} split")
        rows = list(rows)
        with self._lock:
            known = self._rows.setdefault((template, split), {})
            missing = [r for r in dict.fromkeys(rows) if r not in known]
        names = list(self.task.class_names)
        if missing:
            refs = [ImageRef(items[r].id, self.task.source) for r in missing]
            try:
                preds = list(self.predict(template, names, refs))
            except ScorerError:
                raise
            except Exception as err:  # the black box failed on this template: a failed trial, not a crash
                raise ScorerError(f"the predictor raised {type(err).__name__}: {err}") from None
            found, _ = _labels(preds, names, len(missing))
            with self._lock:
                known.update(zip(missing, (int(v) for v in found), strict=True))
        pred = np.array([known[r] for r in rows], dtype=np.int64)
        labels = np.array([items[r].label for r in rows])
        correct = (pred == labels).astype(np.float64)
        per_class = {n: float(correct[labels == c].mean()) for c, n in enumerate(names) if (labels == c).any()}
        return Score(float(correct.mean()) if rows else 0.0, {"unknown_predictions": float((pred < 0).sum())},
                     per_class, tuple(correct.tolist()), tuple(int(v) for v in labels), tuple(int(v) for v in pred))


def _import_callable(target: str) -> Predict:
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ScorerConfigError(f"predictions:{target}: cannot import it ({err}); "
                                "give predictions:package.module:function") from None
    if not callable(fn):
        raise ScorerConfigError(f"predictions:{target} is not callable")
    return fn


def build(arg: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any]) -> PredictionScorer:
    del cache_dir  # predictions are cheap to keep in memory and may change with the remote model
    opts = dict(options)
    if arg.startswith(("http://", "https://")):
        predict: Predict = HttpPredictor(arg, int(opts.get("batch_size", 64)), float(opts.get("timeout_s", 60.0)),
                                         opts.get("headers"))
        return PredictionScorer("predictions", predict, task, f"predictions: black-box labels from {arg}")
    if arg:
        return PredictionScorer("predictions", _import_callable(arg), task, f"predictions: labels from {arg}")
    if not callable(opts.get("predict")):
        raise ScorerConfigError("predictions needs a predictor: predictions:http://host:port/path, "
                                "predictions:module:function, or a callable in scorer options['predict']")
    fn = opts["predict"]
    label = getattr(fn, "__qualname__", type(fn).__name__)
    return PredictionScorer("predictions", fn, task, f"predictions: labels from the callable {label}")
