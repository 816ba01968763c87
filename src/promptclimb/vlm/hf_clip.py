"""The ``hf:MODEL_ID_OR_FOLDER`` scorer: a CLIP or SigLIP model from transformers as a zero-shot Backbone.

``hf:openai/clip-vit-base-patch32`` loads from the Hugging Face hub (or its local cache);
``hf:/path/to/folder`` loads a folder written by ``save_pretrained`` (model + processor). Image and
text embeddings come from ``get_image_features`` / ``get_text_features``; SigLIP text is padded to
``max_length`` as it was trained. When the hub cannot be reached the load is cache-only, so an
offline machine fails in seconds with a one-line ScorerConfigError, not after minutes of retries.

Options: ``device`` (``auto``: cuda, then mps, then cpu), ``batch_size`` (images per forward, 32),
``workers`` (image decode processes; default one per core but one), ``text_batch_size`` (256),
``text_padding`` (``max_length`` for SigLIP, ``longest`` otherwise), ``skip_unreadable``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from promptclimb import output
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.device import AUTO, resolve_device
from promptclimb.vlm.zero_shot import ZeroShotScorer, extraction_options

HUB_URL = "https://huggingface.co"


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host and port opens within ``timeout`` seconds."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline_unless_reachable() -> Iterator[bool]:
    """Cache-only Hugging Face hub access while inside, if the hub is unreachable; yields whether it is."""
    import huggingface_hub.constants as hub

    online = not hub.is_offline_mode() and reachable(os.environ.get("HF_ENDPOINT", HUB_URL))
    saved = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = saved or not online
    try:
        yield online
    finally:
        hub.HF_HUB_OFFLINE = saved


def _features(output: Any) -> Any:
    """transformers 5 returns a ModelOutput whose pooler_output is the projected embedding."""
    return output if hasattr(output, "shape") else output.pooler_output


def _folder_stamp(folder: Path) -> str:
    parts = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in folder.iterdir() if p.is_file())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class PixelValues:
    """One image -> its pixel_values tensor (picklable: it runs in the DataLoader's worker processes)."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Any) -> Any:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]


class HFClipBackbone:
    """A transformers CLIP-like model (CLIPModel, SiglipModel, ...) and its processor."""

    def __init__(self, spec: str, device: str = "cpu", batch_size: int = 256,
                 text_padding: str | None = None) -> None:
        from promptclimb.vlm.torch_compat import ensure_torchvision_importable

        ensure_torchvision_importable()
        from transformers import AutoModel, AutoProcessor

        folder = Path(spec).expanduser()
        is_folder = folder.is_dir()
        if not is_folder and (spec.startswith((".", "/", "~")) or spec.count("/") > 1):
            raise ScorerConfigError(f"hf: no model folder {spec}: pass a folder written by save_pretrained "
                                    "or a hub id such as openai/clip-vit-base-patch32")
        source = str(folder) if is_folder else spec
        device = resolve_device(device)
        with hub_offline_unless_reachable() as online, output.loading(f"{spec} on {device}"):
            try:
                self.model = AutoModel.from_pretrained(source, local_files_only=is_folder or not online)
                self.processor = AutoProcessor.from_pretrained(source, local_files_only=is_folder or not online)
            except (OSError, ValueError) as err:
                if is_folder:
                    raise ScorerConfigError(f"hf: cannot load {source}: {str(err).splitlines()[0]}") from None
                raise ScorerConfigError(
                    f"hf: cannot load {spec!r} ({'not on the hub' if online else 'hub unreachable and not cached'}):"
                    " check the id, connect to the network once, or pass a local folder (hf:/path/to/folder)"
                ) from None
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise ScorerConfigError(f"hf: {spec} is a {type(self.model).__name__}, not a CLIP-like model "
                                    "(needs get_image_features and get_text_features)")
        self.model = self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        model_type = str(getattr(self.model.config, "model_type", ""))
        self.text_padding = text_padding or ("max_length" if model_type.startswith("siglip") else "longest")
        text_config = getattr(self.model.config, "text_config", self.model.config)
        self.max_length = int(getattr(text_config, "max_position_embeddings", 77))
        revision = _folder_stamp(folder) if is_folder else getattr(self.model.config, "_commit_hash", None)
        self.id = f"hf:{source}@{revision}"
        image_processor = getattr(self.processor, "image_processor", self.processor)
        self.preprocess_id = hashlib.sha256(image_processor.to_json_string().encode()).hexdigest()[:16]
        self.description = f"hf: {type(self.model).__name__} {source} (transformers, {device})"
        self._lock = threading.Lock()

    @property
    def prepare_image(self) -> PixelValues:
        return PixelValues(getattr(self.processor, "image_processor", self.processor))

    def encode_prepared(self, batch: Any) -> np.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            pixels = batch.to(self.device, non_blocking=True)
            return _features(self.model.get_image_features(pixel_values=pixels)).float().cpu().numpy()

    def encode_images(self, images: list[Any]) -> np.ndarray:
        import torch

        prepare = self.prepare_image
        return self.encode_prepared(torch.stack([prepare(im) for im in images]))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        chunks = []
        with self._lock, torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                inputs = tokenizer(texts[i: i + self.batch_size], padding=self.text_padding, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
                chunks.append(_features(self.model.get_text_features(**inputs)).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


@cache
def shared_backbone(spec: str, device: str, text_batch_size: int, text_padding: str | None) -> HFClipBackbone:
    """One loaded model per process and setting: a grid's cells share it."""
    return HFClipBackbone(spec, device, text_batch_size, text_padding)


def build(arg: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any]) -> ZeroShotScorer:
    if not arg:
        raise ScorerConfigError("hf needs a model: hf:openai/clip-vit-base-patch32 or hf:/path/to/folder")
    opts = dict(options)
    padding = opts.get("text_padding")
    device = resolve_device(str(opts.get("device", AUTO)))
    backbone = shared_backbone(arg, device, int(opts.get("text_batch_size", 256)), str(padding) if padding else None)
    return ZeroShotScorer(f"hf:{arg}", backbone, task, cache_dir, **extraction_options(opts))
