"""Image feature extraction: decode and preprocess in torch DataLoader worker processes, encode
batches on the backbone's device, with a progress bar (images, images/s, ETA).

A backbone that offers ``prepare_image(image) -> tensor or array`` (per image, run in the workers;
must be picklable) and ``encode_prepared(batch) -> array`` (one stacked batch, run here) gets the
parallel path; any other backbone gets its ``encode_images`` called on lists of decoded images,
still decoded in the workers. Features do not depend on the number of workers or the batch size,
so the feature cache keys do not name them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from promptclimb import output
from promptclimb.tasks.classification import DatasetError

# Below this many images, worker processes cost more to start than they save.
MIN_IMAGES_FOR_WORKERS = 64


def default_workers() -> int:
    """Decode workers: one per core but one (the encoder runs here), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 1) - 1))


class ImageItems:
    """A map-style dataset of (index, prepared image or None, error or None); errors travel as text."""

    def __init__(self, source: Any, ids: Sequence[str], prepare: Callable[[Any], Any] | None) -> None:
        self.source, self.ids, self.prepare = source, list(ids), prepare

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[int, Any, str | None]:
        try:
            image = self.source.load(self.ids[index])
        except DatasetError as err:
            return index, None, str(err)
        return index, (self.prepare(image) if self.prepare else image), None


def collate(rows: list[tuple[int, Any, str | None]]) -> tuple[list[int], Any, list[tuple[int, str]]]:
    """Stack prepared tensors or arrays into one batch (decoded images stay a list)."""
    import torch

    good = [(i, x) for i, x, err in rows if err is None]
    errors = [(i, err) for i, _, err in rows if err is not None]
    items = [x for _, x in good]
    batch: Any = items
    if items and isinstance(items[0], np.ndarray | torch.Tensor):
        batch = torch.stack([torch.as_tensor(x) for x in items])
    return [i for i, _ in good], batch, errors


def extract_features(backbone: Any, source: Any, ids: Sequence[str], *, batch_size: int = 32,
                     workers: int | None = None, on_error: Callable[[str, str], None],
                     label: str = "") -> tuple[np.ndarray, list[str]]:
    """Features of the images ``ids`` of ``source`` and the ids that were read; ``on_error(id, message)``
    is called for each unreadable image (it raises to stop)."""
    from torch.utils.data import DataLoader

    load = getattr(backbone, "load", None)  # models load before the bar starts: its rate is the extraction's
    if callable(load):
        load()
    prepare = getattr(backbone, "prepare_image", None)
    encode = getattr(backbone, "encode_prepared", None) if prepare else None
    n_workers = default_workers() if workers is None else workers
    if len(ids) < MIN_IMAGES_FOR_WORKERS:
        n_workers = 0
    device = str(getattr(backbone, "device", "cpu"))
    dataset: Any = ImageItems(source, ids, prepare)  # map-style: __len__ and __getitem__
    loader: DataLoader[Any] = DataLoader(dataset, batch_size=batch_size, num_workers=n_workers,
                        collate_fn=collate, pin_memory=device.startswith("cuda"),
                        prefetch_factor=4 if n_workers else None)
    chunks: list[np.ndarray] = []
    kept: list[str] = []
    with output.track(f"image features{label}", total=len(ids)) as advance:
        for indices, batch, errors in loader:
            for index, message in errors:
                on_error(ids[index], message)
            if indices:
                feats = encode(batch) if encode else backbone.encode_images(batch)
                chunks.append(np.asarray(feats, dtype=np.float32))
                kept.extend(ids[i] for i in indices)
            advance(len(indices) + len(errors))
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32), []
    return np.concatenate(chunks), kept
