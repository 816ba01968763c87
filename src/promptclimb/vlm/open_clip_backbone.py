"""The ``open_clip`` scorer: an open_clip model as a zero-shot Backbone.

Specs (the part after ``open_clip:``):

- ``ARCH/TAG``: published weights, e.g. ``RN50/openai``, ``ViT-B-16/laion2b_s34b_b88k``;
- ``ARCH/PATH``: a local checkpoint for that architecture, as it is typed: ``ARCH//home/me/ckpt.pt``
  (absolute), ``ARCH/ckpts/model.pt`` or ``ARCH/./model.pt`` (relative to the working directory),
  ``ARCH/~/ckpt.pt``; an older relative ``ARCH//ckpts/model.pt`` still loads when only it exists;
- ``ARCH/random``: random initialisation from ``seed`` (tests, offline smoke runs; chance accuracy);
- ``hf-hub:org/repo`` or ``local-dir:/folder``: open_clip's own schemas, passed through.

Options: ``device`` (``auto``: cuda, then mps, then cpu), ``batch_size`` (images per forward, 32),
``workers`` (image decode processes; default one per core but one), ``text_batch_size`` (256),
``seed`` (0, for ``random``), ``skip_unreadable``. The hub is probed first: offline, only cached
weights load, and a miss fails at once with a one-line ScorerConfigError saying what to do.
"""

from __future__ import annotations

import difflib
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb import output
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.device import AUTO, resolve_device
from promptclimb.vlm.hf_clip import hub_offline_unless_reachable
from promptclimb.vlm.zero_shot import ZeroShotScorer, extraction_options


@dataclass(frozen=True)
class OpenClipSpec:
    model_name: str  # what open_clip.create_model gets (an architecture or a schema)
    pretrained: str | None  # a tag, a checkpoint path, or None (random init or schema)
    label: str  # for ids and messages

    @property
    def random(self) -> bool:
        return self.pretrained is None and ":" not in self.model_name


def parse_spec(arg: str) -> OpenClipSpec:
    """Check ``arg`` against open_clip's architectures and tags; one-line errors name the fix."""
    import open_clip

    if arg.startswith(("hf-hub:", "local-dir:")):
        return OpenClipSpec(arg, None, arg)
    arch, _, tag = arg.partition("/")
    models = open_clip.list_models()
    if arch not in models:
        close = difflib.get_close_matches(arch, models, n=4) or models[:4]
        raise ScorerConfigError(f"unknown open_clip architecture {arch!r}; e.g. {', '.join(close)} "
                                "(all: open_clip.list_models())")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in (*tags, "random") and _looks_like_path(tag):
        path = checkpoint_path(arch, tag)
        stat = path.stat()
        return OpenClipSpec(arch, str(path), f"{arch}//{path}@{stat.st_size}:{stat.st_mtime_ns}")
    if tag == "random":
        return OpenClipSpec(arch, None, f"{arch}/random")
    if tag not in tags:
        known = ", ".join(tags) or "none published"
        raise ScorerConfigError(f"unknown pretrained tag {tag!r} for open_clip {arch}; tags: {known}; "
                                f"or open_clip:{arch}/random, open_clip:{arch}//path/to/ckpt.pt")
    return OpenClipSpec(arch, tag, f"{arch}/{tag}")


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", ".")) or "/" in text or text.endswith(CHECKPOINT_SUFFIXES)


def checkpoint_path(arch: str, typed: str) -> Path:
    """The checkpoint file a user meant by ``open_clip:ARCH/typed``, resolved to an absolute path:
    ``/home/me/ckpt.pt`` (from ``ARCH//home/me/ckpt.pt``; extra leading slashes are one),
    ``~/ckpt.pt``, or a path relative to the working directory. A leading slash that finds no file
    falls back to the relative reading (``ARCH//ckpts/model.pt`` once meant a relative path).
    The error names where it looked and a form that loads the file once it is there."""
    rest = typed.lstrip("/")
    if rest.startswith("~"):
        tried = [Path(rest).expanduser()]
    elif typed.startswith("/"):
        tried = [Path("/" + rest), Path.cwd() / rest]
    else:
        tried = [Path.cwd() / rest]
    for path in tried:
        if path.is_file():
            return path.resolve()
    looked = " or ".join(str(p) for p in tried)
    raise ScorerConfigError(f"open_clip checkpoint not found at {looked}: put the file there or pass its "
                            f"absolute path, e.g. open_clip:{arch}/{tried[0]} (also relative: "
                            f"open_clip:{arch}/ckpts/model.pt, or open_clip:{arch}/~/ckpt.pt)")


def _weights_digest(model: Any) -> str:
    """A cheap fingerprint of randomly initialised weights (init may differ across torch versions)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().float().flatten()
        h.update(name.encode() + flat[:64].numpy().tobytes() + flat.sum().numpy().tobytes())
    return h.hexdigest()[:16]


class OpenClipBackbone:
    """An open_clip model, its eval preprocessing and tokenizer."""

    def __init__(self, spec: OpenClipSpec, device: str = "cpu", text_batch_size: int = 256, seed: int = 0) -> None:
        import open_clip
        import torch

        device = resolve_device(device)
        with (hub_offline_unless_reachable() as online, torch.random.fork_rng(devices=[]),
              output.loading(f"open_clip {spec.label} on {device}")):
            torch.manual_seed(seed)
            try:
                model, _, self.preprocess = open_clip.create_model_and_transforms(
                    spec.model_name, pretrained=spec.pretrained, device=device)
                self.tokenizer = open_clip.get_tokenizer(spec.model_name)
            except Exception as err:  # open_clip raises RuntimeError/OSError/ValueError for all of these
                if spec.pretrained and Path(spec.pretrained).is_file():
                    first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
                    raise ScorerConfigError(f"open_clip checkpoint {spec.pretrained} does not load into "
                                            f"{spec.model_name}: {first}") from None
                where = "the download failed" if online else "the hub is unreachable and they are not cached"
                raise ScorerConfigError(
                    f"cannot get the weights of open_clip {spec.label} ({where}): connect to the network once, "
                    f"or pass a local checkpoint: open_clip:{spec.model_name}//path/to/ckpt.pt") from None
        self.model = model.eval()
        self.device = device
        self.text_batch_size = text_batch_size
        weights = f"random-seed{seed}-{_weights_digest(model)}" if spec.random else spec.label
        self.id = f"open_clip:{spec.model_name}:{weights}"
        self.preprocess_id = " ".join(repr(self.preprocess).split())
        kind = "random init (chance-level; tests only)" if spec.random else "weights " + spec.label
        self.description = f"open_clip: {spec.model_name}, {kind}, on {device}"
        self._lock = threading.Lock()

    @property
    def prepare_image(self) -> Any:
        """open_clip's eval transform (picklable: it runs in the DataLoader's worker processes)."""
        return self.preprocess

    def encode_prepared(self, batch: Any) -> np.ndarray:
        import torch

        with self._lock, torch.inference_mode():
            pixels = batch.to(self.device, non_blocking=True)
            return self.model.encode_image(pixels).float().cpu().numpy()

    def encode_images(self, images: list[Any]) -> np.ndarray:
        import torch

        return self.encode_prepared(torch.stack([self.preprocess(im) for im in images]))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        chunks = []
        with self._lock, torch.no_grad():
            for i in range(0, len(texts), self.text_batch_size):
                tokens = self.tokenizer(texts[i: i + self.text_batch_size]).to(self.device)
                chunks.append(self.model.encode_text(tokens).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


@cache
def shared_backbone(spec: OpenClipSpec, device: str, text_batch_size: int, seed: int) -> OpenClipBackbone:
    """One loaded model per process and setting: a grid's cells share it."""
    return OpenClipBackbone(spec, device, text_batch_size, seed)


def build(arg: str, *, task: Any, cache_dir: Path, options: Mapping[str, Any]) -> ZeroShotScorer:
    from promptclimb.vlm.torch_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    if not arg:
        raise ScorerConfigError("open_clip needs a model: open_clip:ARCH/TAG (e.g. open_clip:ViT-B-32/openai), "
                                "open_clip:ARCH//abs/path/ckpt.pt or open_clip:ARCH/random")
    opts = dict(options)
    device = resolve_device(str(opts.get("device", AUTO)))
    backbone = shared_backbone(parse_spec(arg), device, int(opts.get("text_batch_size", 256)), int(opts.get("seed", 0)))
    return ZeroShotScorer(f"open_clip:{arg}", backbone, task, cache_dir, **extraction_options(opts))
