"""``device=auto`` for torch backbones: the first of cuda, mps, cpu that this machine has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AUTO = "auto"


def _has_cuda(torch: Any) -> bool:
    return bool(torch.cuda.is_available())


def _has_mps(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


# In order of preference; cpu is always there.
PREFERENCE: tuple[tuple[str, Callable[[Any], bool]], ...] = (("cuda", _has_cuda), ("mps", _has_mps))


def resolve_device(name: str) -> str:
    """``auto`` -> the best device present; any other name (cpu, cuda:1, mps) is returned as given."""
    if name != AUTO:
        return name
    import torch

    return next((device for device, present in PREFERENCE if present(torch)), "cpu")
