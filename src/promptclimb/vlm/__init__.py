"""Scorers by name. A scorer factory is ``build(arg, *, task, cache_dir, options) -> Scorer``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from promptclimb.registry import Registry
from promptclimb.vlm.base import EnsembleScorer, Scorer, ScorerConfigError, ScorerError

SCORERS: Registry[Scorer] = Registry(
    "scorer",
    {
        "fake": "promptclimb.testing.fake_scorer:build",
        "conse": "promptclimb.vlm.conse:build",
    },
    help={
        "fake": "a deterministic hash of the template text (tests; not a VLM)",
        "conse": "ConSE offline zero-shot classifier (EfficientNet-Lite0 + MiniLM); not CLIP",
    },
)


def build_scorer(
    spec: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any] | None = None
) -> Scorer:
    return SCORERS.create(spec, task=task, cache_dir=cache_dir, options=dict(options or {}))


__all__ = ["SCORERS", "EnsembleScorer", "Scorer", "ScorerConfigError", "ScorerError", "build_scorer"]
