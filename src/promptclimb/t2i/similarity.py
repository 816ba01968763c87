"""Similarity backbones: a number in [0, 1] for how close a generated image is to the goal,
image-image (inversion: to the reference) or image-text (generation: to the user's words).
The paper had only the judge's words; this number is extra feedback for the LLM and what picks
the final prompt. Cosines below 0 count as 0.

- ``conse``: the embedded offline backbone (vlm/conse.py). Images are mapped into the sentence-
  embedding space (MiniLM) as the probability-weighted mean of their top ImageNet class names, so
  both image-image and image-text are cosines in one space. Coarse, but needs no download.
- ``open_clip:ARCH/TAG``: an OpenCLIP model (e.g. open_clip:ViT-B-32/laion2b_s34b_b79k), when its
  weights are installed: CLIP image and text embeddings.
- ``histogram``: the toy backbone for tests (t2i/fake.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL.Image import Image

from promptclimb.vlm.base import ScorerConfigError


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
    return max(0.0, min(1.0, float(np.dot(a, b)) / denom))


class _Embedded:
    """Similarities from image and text encoders, with the embeddings of repeated inputs (the
    reference image, the intent) kept."""

    name = ""
    description = ""

    def __init__(self, encode_image: Callable[[Image], np.ndarray], encode_text: Callable[[str], np.ndarray]):
        self._encode_image, self._encode_text = encode_image, encode_text
        self._images: dict[int, tuple[Image, np.ndarray]] = {}
        self._texts: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _image(self, image: Image) -> np.ndarray:
        with self._lock:
            hit = self._images.get(id(image))
            if hit is not None and hit[0] is image:
                return hit[1]
        emb = self._encode_image(image)
        with self._lock:
            if len(self._images) > 64:
                self._images.clear()
            self._images[id(image)] = (image, emb)
        return emb

    def _text(self, text: str) -> np.ndarray:
        if text not in self._texts:
            self._texts[text] = self._encode_text(text)
        return self._texts[text]

    def check(self) -> None:
        """Load the models now, before anything is paid for (a missing one is a setup error)."""
        from PIL import Image as PILImage

        self.image_text(PILImage.new("RGB", (32, 32), "white"), "a picture")

    def image_image(self, a: Image, b: Image) -> float:
        return _cos(self._image(a), self._image(b))

    def image_text(self, image: Image, text: str) -> float:
        return _cos(self._image(image), self._text(text))


def build_conse(arg: str, *, options: Mapping[str, Any]) -> _Embedded:
    from promptclimb.vlm.conse import parse_arg, shared_backbone

    image_model, top_t = parse_arg(arg, options)
    backbone = shared_backbone(top_t, image_model)
    sim = _Embedded(lambda im: backbone.encode_images([im.convert("RGB")])[0],
                    lambda text: backbone.encode_texts([text])[0])
    sim.name, sim.description = "conse", "ConSE: image and text in the MiniLM sentence space (offline, coarse)"
    return sim


def build_open_clip(arg: str, *, options: Mapping[str, Any]) -> _Embedded:
    arch, _, tag = (arg or "ViT-B-32/laion2b_s34b_b79k").partition("/")
    try:
        from promptclimb.vlm.torch_compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        import open_clip
        import torch
    except ImportError as err:
        raise ScorerConfigError(f"the open_clip similarity needs {err.name}: pip install open_clip_torch") from None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag or None,
                                                                     device=str(options.get("device", "cpu")))
    except (RuntimeError, OSError, ValueError) as err:
        raise ScorerConfigError(f"cannot load open_clip {arch}/{tag} ({type(err).__name__}: {str(err)[:120]}); "
                                "its weights must be downloaded first (or use --scorer conse offline)") from None
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)

    def image(im: Image) -> np.ndarray:
        with torch.inference_mode():
            return model.encode_image(preprocess(im.convert("RGB")).unsqueeze(0))[0].float().numpy()

    def text(t: str) -> np.ndarray:
        with torch.inference_mode():
            return model.encode_text(tokenizer([t]))[0].float().numpy()

    sim = _Embedded(image, text)
    sim.name, sim.description = f"open_clip:{arch}/{tag}", "OpenCLIP image and text embeddings"
    return sim


def build_histogram(arg: str, *, options: Mapping[str, Any]) -> Any:
    from promptclimb.t2i.fake import HistogramSimilarity

    return HistogramSimilarity()
