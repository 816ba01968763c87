"""Few-shot sampling, the held-out test split and label checks of the classification task."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import (
    DatasetError,
    FileImageSource,
    ImageItem,
    few_shot,
    held_out,
    make_task,
)


def pool(per_class: list[int]) -> list[ImageItem]:
    return [ImageItem(f"c{label}/{i:03d}.jpg", label) for label, n in enumerate(per_class) for i in range(n)]


def counts(items: tuple[ImageItem, ...] | list[ImageItem], n_classes: int) -> list[int]:
    return [sum(1 for i in items if i.label == c) for c in range(n_classes)]


@pytest.mark.parametrize(("shots", "val"), [(1, 1), (2, 2), (4, 4), (16, 4)])
def test_k_per_class_and_val_min_k_4(shots: int, val: int) -> None:
    train, val_items, notes = few_shot(pool([30, 30, 30]), 3, shots, seed=0)
    assert counts(train, 3) == [shots] * 3
    assert counts(val_items, 3) == [val] * 3
    assert not {i.id for i in train} & {i.id for i in val_items}
    assert notes == []


def test_same_seed_same_split_whatever_the_pool_order() -> None:
    items = pool([20, 20])
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    assert few_shot(items, 2, 4, seed=3) == few_shot(shuffled, 2, 4, seed=3)
    assert few_shot(items, 2, 4, seed=3)[0] != few_shot(items, 2, 4, seed=4)[0]


def test_small_class_is_noted_not_padded() -> None:
    train, val, notes = few_shot(pool([20, 3]), 2, 4, seed=0)
    assert counts(train, 2) == [4, 3] and counts(val, 2) == [4, 0]
    assert notes == ["class 1: 3 images for 4 shots + 4 val"]


def test_empty_pool() -> None:
    with pytest.raises(DatasetError, match="the training pool is empty"):
        few_shot([], 2, 1, seed=0)


def test_held_out_is_seed_independent_and_disjoint() -> None:
    items = pool([10, 5])
    rest, test = held_out(items, 2, 0.4, "x")
    assert counts(test, 2) == [4, 2]  # 40%, at least 2
    assert not {i.id for i in rest} & {i.id for i in test} and len(rest) + len(test) == 15
    assert held_out(list(reversed(items)), 2, 0.4, "x") == (rest, test)


def test_make_task_rejects_labels_outside_the_class_names(tmp_path: Path) -> None:
    info = TaskInfo("t", "d", ("a", "b"))
    with pytest.raises(DatasetError, match=r"label 2 of c2/000\.jpg is outside the 2 class names"):
        make_task(info, FileImageSource(tmp_path), pool([3, 3, 3]), [], 1, 0)


def test_split_manifest_rebuilds_the_splits(tmp_path: Path) -> None:
    task = make_task(TaskInfo("t", "d", ("a", "b")), FileImageSource(tmp_path), pool([6, 6]),
                     [ImageItem("t/0.jpg", 1)], 2, 5)
    manifest = task.split_manifest()
    assert manifest["shots"] == 2 and manifest["seed"] == 5 and manifest["classes"] == ["a", "b"]
    assert manifest["splits"]["test"] == [["t/0.jpg", 1]]
    assert [tuple(x) for x in manifest["splits"]["train"]] == [(i.id, i.label) for i in task.splits["train"]]
    assert task.split_key("train") != task.split_key("val")
