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
        "open_clip": "promptclimb.vlm.open_clip_backbone:build",
        "hf": "promptclimb.vlm.hf_clip:build",
        "predictions": "promptclimb.vlm.predictions:build",
    },
    help={
        "fake": "a deterministic hash of the template text (tests; not a VLM); fake:NAME salts the hash "
                "(another fake backbone)",
        "conse": "ConSE offline zero-shot classifier (EfficientNet-Lite0 + MiniLM); not CLIP. "
                 "conse:lite1 / conse:lite2: EfficientNet-Lite1 (240 px) / Lite2 (260 px) instead; "
                 "conse:T or conse:lite2:T: top-T ImageNet classes (default 10)",
        "open_clip": "open_clip:ARCH/TAG (e.g. ViT-B-32/openai), a checkpoint open_clip:ARCH//abs/ckpt.pt, "
                     "open_clip:ARCH/rel/ckpt.pt or open_clip:ARCH/~/ckpt.pt, open_clip:ARCH/random",
        "hf": "hf:MODEL_ID_OR_FOLDER: a transformers CLIP or SigLIP model (hub id or save_pretrained folder)",
        "predictions": "a black box returning one label per image: predictions:http://host:port/path, "
                       "predictions:module:function, or options['predict']",
    },
)


def build_scorer(
    spec: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any] | None = None
) -> Scorer:
    return SCORERS.create(spec, task=task, cache_dir=cache_dir, options=dict(options or {}))


__all__ = ["SCORERS", "EnsembleScorer", "Scorer", "ScorerConfigError", "ScorerError", "build_scorer"]
