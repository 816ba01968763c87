"""torch_compat: the torchvision schemas are defined only where its C extension cannot load."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from promptclimb.vlm.torch_compat import _extension_loads


class NoOps:
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def fake_torch(defined: bool, loads: bool) -> SimpleNamespace:
    def load_library(path: str) -> None:
        if not loads:
            raise OSError(f"{path}: libtorch_cuda.so: cannot open shared object file")

    torchvision = SimpleNamespace(nms=object()) if defined else NoOps()
    return SimpleNamespace(ops=SimpleNamespace(torchvision=torchvision, load_library=load_library))


@pytest.mark.parametrize(("defined", "loads", "expected"), [
    (True, False, True),  # already imported fine: nothing to do
    (False, True, True),  # a CUDA machine or a CPU torchvision: the extension defines the operators
    (False, False, False),  # PyPI's CUDA build beside the CPU torch: the patch is needed
])
def test_patch_only_where_the_extension_cannot_load(tmp_path: Path, defined: bool, loads: bool,
                                                   expected: bool) -> None:
    (tmp_path / "_C.so").write_bytes(b"")
    assert _extension_loads(fake_torch(defined, loads), tmp_path) is expected


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed")
def test_torchvision_and_sentence_transformers_import_after_the_call() -> None:
    code = ("from promptclimb.vlm.torch_compat import ensure_torchvision_importable as e; e(); "
            "import torchvision, sentence_transformers; print('imported')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip() == "imported", run.stderr[-500:]
