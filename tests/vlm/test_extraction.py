"""Feature extraction through the DataLoader: worker processes give the same features in the same
order as in-process decoding, unreadable images are reported by id, caches written either way hit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vlm_images import tiny_task, write_images

from promptclimb.tasks.classification import FileImageSource
from promptclimb.vlm import extraction
from promptclimb.vlm.extraction import MIN_IMAGES_FOR_WORKERS, extract_features
from promptclimb.vlm.zero_shot import ZeroShotScorer


class MeanRGB:
    """A picklable per-image preprocessing: the image's mean colour, its height, and the id of the
    process that prepared it."""

    def __call__(self, image: Any) -> np.ndarray:
        pixels = np.asarray(image, dtype=np.float32)
        return np.append(pixels.reshape(-1, 3).mean(axis=0), [pixels.shape[0], os.getpid()])


class PreparedBackbone:
    """A backbone with the parallel path; records the batches it was given."""

    id, preprocess_id, description, device = "prepared:1", "mean-rgb-height", "prepared fake", "cpu"

    def __init__(self) -> None:
        self.prepare_image = MeanRGB()
        self.batches: list[tuple[type, int]] = []

    def encode_prepared(self, batch: Any) -> np.ndarray:
        self.batches.append((type(batch), len(batch)))
        return np.asarray(batch, dtype=np.float32) * 2.0

    def encode_images(self, images: list[Any]) -> np.ndarray:
        return self.encode_prepared(np.stack([self.prepare_image(im) for im in images]))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 5), dtype=np.float32)


class ListBackbone:
    """A backbone without prepare_image: gets lists of decoded images."""

    id, preprocess_id, description = "list:1", "mean-rgb", "list fake"

    def __init__(self) -> None:
        self.seen: list[type] = []

    def encode_images(self, images: list[Any]) -> np.ndarray:
        self.seen.append(type(images))
        return np.stack([np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(axis=0) for im in images])


@pytest.fixture
def images(tmp_path: Path) -> tuple[FileImageSource, list[str]]:
    items = write_images(tmp_path / "many", per_class=20)  # 80 images: above the worker threshold
    assert len(items) >= MIN_IMAGES_FOR_WORKERS
    return FileImageSource(tmp_path / "many"), [i.id for i in items]


def never(item_id: str, message: str) -> None:
    raise AssertionError(f"unexpected unreadable image {item_id}: {message}")


def test_workers_give_the_same_features_in_order(images: tuple[FileImageSource, list[str]]) -> None:
    source, ids = images
    serial, kept_serial = extract_features(PreparedBackbone(), source, ids, batch_size=16, workers=0, on_error=never)
    backbone = PreparedBackbone()
    parallel, kept = extract_features(backbone, source, ids, batch_size=16, workers=2, on_error=never)
    assert kept == kept_serial == ids
    np.testing.assert_array_equal(parallel[:, :4], serial[:, :4])
    heights = [np.asarray(source.load(i)).shape[0] for i in ids]
    np.testing.assert_array_equal(parallel[:, 3], np.array(heights, dtype=np.float32) * 2)  # order kept
    assert set(serial[:, 4] / 2) == {os.getpid()}
    assert len(set(parallel[:, 4] / 2) - {os.getpid()}) == 2  # decoded in two worker processes
    assert all(kind.__name__ == "Tensor" for kind, _ in backbone.batches)  # one stacked batch per forward
    assert [n for _, n in backbone.batches] == [16] * 5


def test_backbone_without_prepare_gets_decoded_images(images: tuple[FileImageSource, list[str]]) -> None:
    source, ids = images
    backbone = ListBackbone()
    feats, kept = extract_features(backbone, source, ids, batch_size=32, workers=2, on_error=never)
    assert feats.shape == (len(ids), 3) and kept == ids
    assert backbone.seen == [list, list, list]


def test_unreadable_images_are_reported_by_id(images: tuple[FileImageSource, list[str]]) -> None:
    source, ids = images
    broken = [ids[3], ids[40]]
    for item_id in broken:
        (source.root / item_id).write_bytes(b"not an image")
    errors: list[str] = []
    feats, kept = extract_features(PreparedBackbone(), source, ids, batch_size=16, workers=2,
                                   on_error=lambda item_id, message: errors.append(item_id))
    assert errors == broken and kept == [i for i in ids if i not in broken] and len(feats) == len(kept)


def test_scorer_stops_on_an_unreadable_image_with_the_fix(tmp_path: Path) -> None:
    task = tiny_task(tmp_path / "images")
    first = task.splits["train"][0].id
    (task.source.root / first).write_bytes(b"broken")
    with pytest.raises(Exception, match="skip_unreadable=true"):
        ZeroShotScorer("p", PreparedBackbone(), task, tmp_path / "cache").score("a {}", "train")


def test_features_from_workers_are_read_back_by_an_in_process_scorer(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction, "MIN_IMAGES_FOR_WORKERS", 1)  # workers even for the tiny split
    task = tiny_task(tmp_path / "images")
    first = PreparedBackbone()
    score = ZeroShotScorer("p", first, task, tmp_path / "cache", workers=2).score("a {}", "val")
    again = PreparedBackbone()
    assert ZeroShotScorer("p", again, task, tmp_path / "cache", workers=0).score("a {}", "val") == score
    assert first.batches and not again.batches  # same cache key whatever the number of workers


def test_torch_transforms_run_in_forked_workers(images: tuple[FileImageSource, list[str]]) -> None:
    """open_clip's eval transform (torch ops) in the workers after torch has run here."""
    import torch

    from promptclimb.vlm.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip

    torch.ones(256, 256) @ torch.ones(256, 256)  # start torch's thread pool before the workers fork
    backbone = PreparedBackbone()
    backbone.prepare_image = open_clip.image_transform(32, is_train=False)
    source, ids = images
    feats, kept = extract_features(backbone, source, ids, batch_size=16, workers=2, on_error=never)
    assert feats.shape == (len(ids), 3, 32, 32) and kept == ids
