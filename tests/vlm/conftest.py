"""Fixtures over the tiny colour task of vlm_images.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vlm_images import COLOURS, tiny_task

from promptclimb.tasks.classification import ClassificationTask


@pytest.fixture
def task(tmp_path: Path) -> ClassificationTask:
    return tiny_task(tmp_path / "images")


@pytest.fixture
def palette() -> np.ndarray:
    """The classes' colours, in class order."""
    return np.array(list(COLOURS.values()), dtype=np.float64)
