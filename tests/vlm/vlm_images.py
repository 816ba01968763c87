"""Tiny image classification tasks generated with PIL: colour-coded classes, train / val / test splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promptclimb.tasks.base import TaskInfo
from promptclimb.tasks.classification import ClassificationTask, FileImageSource, ImageItem, make_task

COLOURS = {"red apple": (220, 30, 30), "green leaf": (30, 200, 40), "blue sky": (40, 60, 230),
           "yellow sun": (240, 230, 30)}


def write_images(root: Path, per_class: int = 6, size: tuple[int, int] = (48, 40)) -> list[ImageItem]:
    """Noisy, differently shaped images of each colour; returns their items."""
    from PIL import Image

    rng = np.random.default_rng(0)
    items = []
    for label, (name, rgb) in enumerate(COLOURS.items()):
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 40, (size[1] + 4 * i, size[0], 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
            items.append(ImageItem(f"{folder.name}/{i}.png", label))
    return items


def tiny_task(root: Path, per_class: int = 6) -> ClassificationTask:
    items = write_images(root, per_class)
    test = [i for i in items if int(Path(i.id).stem) >= per_class - 2]
    pool = [i for i in items if i not in test]
    info = TaskInfo("colours", "solid colour swatches", tuple(COLOURS), ("a photo of a {}.",))
    return make_task(info, FileImageSource(root), pool, test, shots=2, seed=0)
