"""A local Hugging Face diffusers text-to-image pipeline, by model id (from the local Hugging Face
cache, or downloaded when the machine is online) or by folder. Optional: diffusers and torch are
imported only when this backend is chosen. The seed is honoured (a torch.Generator), so a prompt
regenerates the same image; a pipeline's safety checker flagging every image is a refusal."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from promptclimb.llm.base import LLMConfigError
from promptclimb.t2i.base import Generated, GenerationRefused
from promptclimb.t2i.config import GeneratorConfig
from promptclimb.t2i.images import describe_size

INSTALL = "pip install diffusers transformers accelerate (torch is installed by scripts/install.sh)"


class DiffusersGenerator:
    def __init__(self, model: str, config: GeneratorConfig) -> None:
        if not model:
            raise LLMConfigError("give a model: --generator diffusers:MODEL_ID_OR_FOLDER, "
                                 "e.g. diffusers:stabilityai/sd-turbo")
        self.model, self.config = model, config
        self.name = f"diffusers:{model}"
        self.cache_id = (f"image:{self.name} size={config.size} steps={config.steps} "
                         f"guidance={config.guidance_scale} n={config.n}")
        self._pipe: Any = None
        self._device = "cpu"
        self._lock = threading.Lock()

    def check(self) -> None:
        try:
            import diffusers  # noqa: F401
            import torch  # noqa: F401
        except ImportError as err:
            raise LLMConfigError(f"the diffusers generator needs {err.name}: {INSTALL}") from None
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._pipe is not None:
                return self._pipe
            import torch
            from diffusers import AutoPipelineForText2Image

            device = self.config.device or (
                "cuda" if torch.cuda.is_available()
                else "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
            folder = Path(self.model).expanduser()
            source = str(folder) if folder.exists() else self.model
            try:
                pipe = AutoPipelineForText2Image.from_pretrained(
                    source, torch_dtype=torch.float16 if device == "cuda" else torch.float32)
            except (OSError, ValueError) as err:
                raise LLMConfigError(
                    f"cannot load diffusers model {self.model!r} ({type(err).__name__}): give a model folder, or "
                    "an id already in the Hugging Face cache (downloading needs the network)") from None
            pipe = pipe.to(device)
            pipe.set_progress_bar_config(disable=True)
            self._pipe, self._device = pipe, device
            return pipe

    def generate(self, prompt: str, seed: int) -> Generated:
        import torch

        pipe = self._load()
        size = describe_size(self.config.size)
        kwargs: dict[str, Any] = {"prompt": prompt, "num_images_per_prompt": self.config.n,
                                  "num_inference_steps": self.config.steps,
                                  "guidance_scale": self.config.guidance_scale,
                                  "generator": torch.Generator(device="cpu").manual_seed(seed)}
        if size is not None:
            kwargs["width"], kwargs["height"] = size
        with self._lock, torch.inference_mode():
            out = pipe(**kwargs)
        images = list(out.images)
        flagged = list(getattr(out, "nsfw_content_detected", None) or [False] * len(images))
        kept = [im.convert("RGB") for im, bad in zip(images, flagged, strict=False) if not bad]
        if not kept:
            raise GenerationRefused(f"{self.name} refused the prompt: its safety checker flagged every image")
        return Generated(tuple(kept), (None,) * len(kept), None)


def build(arg: str, *, config: GeneratorConfig) -> DiffusersGenerator:
    return DiffusersGenerator(arg or config.model, config)
