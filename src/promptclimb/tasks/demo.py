"""A task with class names and no images, for the fake scorer: the loop runs end to end with no
data set installed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from promptclimb.tasks.base import TaskInfo

_CLASSES = ("cat", "dog", "apple", "rose", "butterfly", "sparrow", "car", "chair")
_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "{}", "an image of a {}.", "a close-up photo of a {}.")


@dataclass(frozen=True)
class DemoTask:
    info: TaskInfo


def build(arg: str, *, shots: int, seed: int, data_root: Path | None = None) -> DemoTask:
    del shots, seed, data_root  # no images to sample
    return DemoTask(TaskInfo(arg or "demo", "everyday objects, animals and plants", _CLASSES, _TEMPLATES))
