"""The few-shot image classification task: class names, a fixed test split, and a train / val
split of k shots per class sampled deterministically from the seed (val: min(k, 4) other shots
per class, as in the paper's code). The sampled split is saved with the run.

Images are reached through an ImageSource (files on disk, arrays in memory) so that scorers can
cache features by the source's fingerprint and the items' ids.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from promptclimb.tasks.base import TaskInfo

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A data set that cannot be loaded; one line naming the problem and the fix."""


@dataclass(frozen=True)
class ImageItem:
    id: str  # unique within the source (a relative path, or "test/123")
    label: int


class ImageSource(Protocol):
    """Where the pixels of items come from."""

    fingerprint: str  # changes when the underlying images change

    def load(self, item_id: str) -> Any:
        """The image as an RGB PIL image; raises DatasetError naming the file if unreadable."""
        ...


@dataclass
class FileImageSource:
    """Images as files under ``root``; transparent images are composited onto white."""

    root: Path
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = f"files:{self.root.resolve()}"

    def load(self, item_id: str) -> Any:
        from PIL import Image, UnidentifiedImageError

        path = self.root / item_id
        try:
            with Image.open(path) as img:
                img.load()
                if img.mode in ("RGBA", "LA", "P"):
                    rgba = img.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    return Image.alpha_composite(white, rgba).convert("RGB")
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise DatasetError(f"cannot read image {path}: {err}; remove or replace the file") from None


@dataclass
class ClassificationTask:
    """Class names, splits of image items, and the source that loads them."""

    info: TaskInfo
    source: ImageSource
    splits: dict[str, tuple[ImageItem, ...]]
    shots: int
    seed: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown on the console and in the report

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def split_manifest(self) -> dict[str, Any]:
        """Everything needed to see (and rebuild) exactly which images each split holds."""
        return {
            "task": self.info.name, "shots": self.shots, "seed": self.seed,
            "source": self.source.fingerprint, "classes": list(self.class_names), "notes": self.notes,
            "splits": {name: [[i.id, i.label] for i in items] for name, items in self.splits.items()},
        }

    def split_key(self, split: str) -> str:
        """A hash of a split's contents, for cache keys."""
        blob = json.dumps([[i.id, i.label] for i in self.splits.get(split, ())])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def few_shot(pool: Sequence[ImageItem], n_classes: int, shots: int, seed: int,
             val_shots: int | None = None) -> tuple[tuple[ImageItem, ...], tuple[ImageItem, ...], list[str]]:
    """k shots per class for train and min(k, 4) others for val, from ``pool``.

    Each class's items are sorted by id, then shuffled by a generator seeded with (seed, class),
    so the split depends only on the seed and the pool, not on the order the pool was read in.
    """
    by_class: dict[int, list[ImageItem]] = defaultdict(list)
    for item in pool:
        by_class[item.label].append(item)
    val_k = min(shots, 4) if val_shots is None else val_shots
    train: list[ImageItem] = []
    val: list[ImageItem] = []
    notes = []
    for label in range(n_classes):
        items = sorted(by_class.get(label, []), key=lambda i: i.id)
        random.Random(f"few-shot/{seed}/{label}").shuffle(items)
        if len(items) < shots + val_k:
            notes.append(f"class {label}: {len(items)} images for {shots} shots + {val_k} val")
        train.extend(items[:shots])
        val.extend(items[shots: shots + val_k])
    if not train:
        raise DatasetError("the training pool is empty: check the data set folder and its split file")
    return tuple(train), tuple(val), notes


def make_task(info: TaskInfo, source: ImageSource, pool: Sequence[ImageItem], test: Sequence[ImageItem],
              shots: int, seed: int) -> ClassificationTask:
    n = len(info.class_names)
    bad = [i for i in (*pool, *test) if not 0 <= i.label < n]
    if bad:
        raise DatasetError(f"label {bad[0].label} of {bad[0].id} is outside the {n} class names: "
                           "the class-name file does not match the split")
    train, val, notes = few_shot(pool, n, shots, seed)
    return ClassificationTask(info, source, {"train": train, "val": val, "test": tuple(test)}, shots,
                              seed, notes, split_warnings(info.name, pool, n, shots, val))


def split_warnings(name: str, pool: Sequence[ImageItem], n_classes: int, shots: int,
                   val: Sequence[ImageItem]) -> list[str]:
    """What makes seeds or the val split meaningless, said so a user can fix it."""
    per_class = Counter(i.label for i in pool)
    out = []
    if all(per_class.get(label, 0) <= shots for label in range(n_classes)):
        most = max(per_class.values(), default=0)
        out.append(f"seeds cannot give different shots: every class of {name} has at most {most} training "
                   f"images for --shots {shots}, so every seed trains on the same images; use fewer --shots "
                   "or more training images per class")
    if not val:
        out.append(f"the val split of {name} is empty: --shots {shots} uses up every class's training "
                   f"images (val takes up to {min(shots, 4)} more per class); use fewer --shots or more images")
    return out


def held_out(items: Sequence[ImageItem], n_classes: int, fraction: float, name: str,
             minimum: int = 2) -> tuple[list[ImageItem], list[ImageItem]]:
    """A fixed (seed-independent) test split: ``fraction`` of each class, at least ``minimum``."""
    by_class: dict[int, list[ImageItem]] = defaultdict(list)
    for item in items:
        by_class[item.label].append(item)
    pool: list[ImageItem] = []
    test: list[ImageItem] = []
    for label in range(n_classes):
        members = sorted(by_class.get(label, []), key=lambda i: i.id)
        random.Random(f"test-split/{name}/{label}").shuffle(members)
        cut = max(minimum, round(len(members) * fraction))
        test.extend(members[:cut])
        pool.extend(members[cut:])
    return pool, test


@cache
def data_file(name: str) -> dict[str, Any]:
    """A JSON data file shipped in promptclimb/tasks/data/."""
    text = resources.files("promptclimb.tasks").joinpath(f"data/{name}.json").read_text()
    return json.loads(text)


@cache
def clip_benchmark_file(kind: str) -> dict[str, Any]:
    """clip-benchmark's class names ("classnames") or templates ("zeroshot_classification_templates")."""
    import importlib.util

    spec = importlib.util.find_spec("clip_benchmark")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("clip-benchmark is not installed: pip install --no-deps clip-benchmark==1.6.2")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / f"en_{kind}.json"
    return json.loads(path.read_text())


def handwritten_templates(key: str | None, fallback: Sequence[str] = ()) -> tuple[str, ...]:
    """A data set's hand-written templates from clip-benchmark, in our ``{}`` form."""
    if key:
        templates = clip_benchmark_file("zeroshot_classification_templates").get(key)
        if templates:
            return tuple(t.replace("{c}", "{}") for t in templates)
    return tuple(fallback)
