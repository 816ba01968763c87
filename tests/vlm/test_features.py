"""Feature and text-embedding caches: keys, corrupt files rebuilt, cache hits that skip the backbone."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promptclimb.registry import UnknownNameError
from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm import build_scorer
from promptclimb.vlm.features import FeatureCache, TextEmbeddingCache
from promptclimb.vlm.zero_shot import ZeroShotScorer


class CountingBackbone:
    """Image = its mean colour; text = a hash; counts every image and text it encodes."""

    description = "counting fake backbone"

    def __init__(self, id: str = "fake:1", preprocess_id: str = "mean-rgb") -> None:
        self.id, self.preprocess_id = id, preprocess_id
        self.images = 0
        self.texts: list[str] = []

    def encode_images(self, images: list[Any]) -> np.ndarray:
        self.images += len(images)
        return np.stack([np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(axis=0) for im in images])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return np.stack([np.frombuffer(hashlib.sha256(t.encode()).digest()[:12], dtype=np.uint8).astype(np.float32)
                         .reshape(4, 3).mean(axis=0) for t in texts])


def scorer(task: ClassificationTask, cache: Path, backbone: CountingBackbone) -> ZeroShotScorer:
    return ZeroShotScorer("counting", backbone, task, cache)


def feature_files(cache: Path) -> set[str]:
    return {p.name for p in (cache / "features").glob("*.npz")}


def test_feature_key_follows_backbone_preprocess_and_split(task: ClassificationTask, tmp_path: Path) -> None:
    first = CountingBackbone()
    scorer(task, tmp_path, first).score("a {}", "train")
    files = feature_files(tmp_path)
    assert len(files) == 1 and first.images == len(task.splits["train"])
    again = CountingBackbone()
    scorer(task, tmp_path, again).score("a {}", "train")
    assert again.images == 0 and feature_files(tmp_path) == files  # same key: read from disk
    for other in (CountingBackbone(id="fake:2"), CountingBackbone(preprocess_id="mean-rgb-v2")):
        scorer(task, tmp_path, other).score("a {}", "train")
        assert other.images == len(task.splits["train"])
    other_split = CountingBackbone()
    scorer(task, tmp_path, other_split).score("a {}", "val")
    assert other_split.images == len(task.splits["val"])
    assert len(feature_files(tmp_path)) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_corrupt_feature_file_is_rebuilt(task: ClassificationTask, tmp_path: Path, damage: str) -> None:
    clean = scorer(task, tmp_path, CountingBackbone()).score("a {}", "train")
    (path,) = (tmp_path / "features").glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"\x00not an npz" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:  # a well-formed file written for other images
        key = str(np.load(path)["key"])
        FeatureCache(tmp_path).save(key, ["x"] * len(task.splits["train"]), np.ones((len(task.splits["train"]), 3)))
    backbone = CountingBackbone()
    assert scorer(task, tmp_path, backbone).score("a {}", "train") == clean
    assert backbone.images == len(task.splits["train"])
    with np.load(path) as data:  # rewritten, valid again
        assert data["ids"].tolist() == [i.id for i in task.splits["train"]]


def test_text_cache_hit_skips_the_backbone(task: ClassificationTask, tmp_path: Path) -> None:
    first = CountingBackbone()
    score = scorer(task, tmp_path, first).score("a {}", "train")
    assert first.texts == [f"a {c}" for c in task.class_names]
    later = CountingBackbone()  # a new process: only the SQLite file is shared
    s = scorer(task, tmp_path, later)
    assert s.score("a {}", "train") == score and later.texts == []
    s.score_ensemble(["a {}", "the {}"], "train")
    assert later.texts == [f"the {c}" for c in task.class_names]  # only the missing prompts
    other = CountingBackbone(id="fake:2")  # embeddings are per backbone
    scorer(task, tmp_path, other).score("a {}", "train")
    assert len(other.texts) == len(task.class_names)


@pytest.mark.parametrize("damage", ["garbage", "torn-page"])
def test_corrupt_text_cache_is_rebuilt(task: ClassificationTask, tmp_path: Path, damage: str) -> None:
    clean = scorer(task, tmp_path, CountingBackbone()).score("a {}", "train")
    cache = TextEmbeddingCache(tmp_path, "fake:1")
    cache.put_many({f"filler {i}": np.full(3, i, dtype=np.float32) for i in range(2000)})
    cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache._conn.close()
    path = tmp_path / "text_embeddings.sqlite"
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data[:] = b"this is not a database" * 100
    else:  # the header survives, the pages after it do not
        data[4096:] = b"\xff" * (len(data) - 4096)
    path.write_bytes(bytes(data))
    backbone = CountingBackbone()
    assert scorer(task, tmp_path, backbone).score("a {}", "train") == clean
    assert len(backbone.texts) == len(task.class_names)  # re-encoded, not trusted
    later = CountingBackbone()
    scorer(task, tmp_path, later).score("a {}", "train")
    assert later.texts == []  # and cached again in the rebuilt file


def test_unknown_scorer_lists_the_known_ones(task: ClassificationTask, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown scorer 'clip'; known: ") as err:
        build_scorer("clip:ViT-B-32", task=task, cache_dir=tmp_path)
    for name in ("conse", "fake", "hf", "open_clip", "predictions"):
        assert name in str(err.value)


def test_rows_of_a_split_score_as_the_same_rows_of_the_whole(task: ClassificationTask, tmp_path: Path) -> None:
    s = scorer(task, tmp_path, CountingBackbone())
    full = s.score("a photo of a {}", "train")
    rows = [3, 1, 0]
    part = s.score_rows("a photo of a {}", "train", rows)
    assert s.split_labels("train") == full.labels
    assert full.per_item is not None and full.labels is not None
    assert part.per_item == tuple(full.per_item[r] for r in rows)
    assert part.labels == tuple(full.labels[r] for r in rows)
