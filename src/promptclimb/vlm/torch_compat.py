"""Make PyPI's torchvision importable next to the CPU build of torch, where it would not be.

Why the patch stays (checked on this project's machines, torch 2.13.0+cpu): PyPI publishes
torchvision for Linux x86_64 only as a CUDA build (0.28.0, the release that requires torch==2.13.0,
bundles libcudart and libnvjpeg, and its ``_C.so`` links ``libtorch_cuda.so``, which the CPU torch
lacks). CPU builds exist only on the PyTorch index (download.pytorch.org), which these machines
cannot reach (``pip download --index-url https://download.pytorch.org/whl/cpu torchvision==0.28.0``
falls back to PyPI's CUDA wheel), and there is no source distribution to build one
(``pip download --no-binary :all: torchvision==0.28.0`` finds none). So the extension fails to load
and ``import torchvision`` then dies registering fake kernels for two operators that were never
defined ("operator torchvision::nms does not exist") — and with it every import that touches
torchvision: open_clip, timm, transformers' image processors, sentence_transformers.

What it does: only when torchvision is installed and its C extension cannot load, it defines the
schemas of those two operators, so the pure-Python parts import (we use none of its C operators).
Where the extension loads (a CUDA machine, a CPU torchvision from the PyTorch index) it does
nothing. How it is kept from leaking into users' own code: nothing runs at ``import promptclimb``;
only the open_clip and hf scorers, and ConSE when torchvision is present, call it, just before
they import those libraries. The ``offline`` extra installs no torchvision at all, so there a
user's own ``import sentence_transformers`` works without it; in an environment with the ``clip``
extra on a CPU-only torch, users' own code can call :func:`ensure_torchvision_importable` first.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any


def _extension_loads(torch: Any, folder: Path) -> bool:
    """Whether torchvision's operators are defined, or its C extension can load (which defines them)."""
    try:
        torch.ops.torchvision.nms  # noqa: B018  (defined once the C extension is loaded)
        return True
    except (AttributeError, RuntimeError):
        pass
    for library in sorted(folder.glob("_C*")):
        try:
            torch.ops.load_library(str(library))
            return True
        except (OSError, RuntimeError):
            return False
    return False


@cache
def ensure_torchvision_importable() -> None:
    """Call before importing open_clip, timm, transformers or sentence_transformers."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    if _extension_loads(torch, Path(next(iter(spec.submodule_search_locations)))):
        return
    lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)  # a Library deregisters its definitions when garbage-collected


_KEEP: list[object] = []
