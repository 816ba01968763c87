"""Make the torchvision wheel importable next to the CPU build of torch.

PyPI's torchvision for Linux is a CUDA build: its C extension links libtorch_cuda, which the CPU
torch wheel lacks, so the extension fails to load and ``import torchvision`` then dies registering
fake kernels for two operators that were never defined. open_clip (transforms) and transformers
(import-time checks) import torchvision; we use none of its C operators. Defining the two missing
schemas lets the pure-Python parts import. Call before importing open_clip, transformers or
sentence_transformers.
"""

from __future__ import annotations

import importlib.util
from functools import cache


@cache
def ensure_torchvision_importable() -> None:
    if importlib.util.find_spec("torchvision") is None:
        return
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018  (defined when the C extension is loaded)
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(lib)  # a Library deregisters its definitions when garbage-collected


_KEEP: list[object] = []
