"""Fixtures for the text-to-image tests: the image + vision-chat server on 127.0.0.1 and a
reference picture (helpers live in t2i_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from t2i_helpers import REFERENCE, SECRET

from promptclimb.t2i.fake import draw_prompt
from promptclimb.testing.image_server import ImageServer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageServer]:
    monkeypatch.setenv("PC_KEY", SECRET)
    with ImageServer(["a green circle on a yellow background", "a blue circle on a yellow background",
                      "a blue square on a yellow background", "a red circle on a white background"],
                     models=("test-image", "test-vision", "test-model", "dall-e-3"), slow_s=1.0) as srv:
        yield srv


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    draw_prompt(REFERENCE, 96).save(path)
    return path
