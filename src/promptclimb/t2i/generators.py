"""Image generators through the OpenAI images API and the official SDK: OpenAI itself (dall-e-3,
gpt-image-1) or any OpenAI-compatible images endpoint by base URL. Only the prompt is sent: no
image of the user's ever goes to a generator. A content-policy refusal raises GenerationRefused
(recorded as a failed trial); rate limits and server errors are retried as for LLM calls."""

from __future__ import annotations

import io
import urllib.request
from functools import partial
from typing import Any

from PIL import Image as PILImage
from PIL.Image import Image

from promptclimb.llm.base import LLMReplyError, RetryableLLMError
from promptclimb.t2i.base import Generated
from promptclimb.t2i.config import GeneratorConfig
from promptclimb.t2i.images import decode_b64
from promptclimb.t2i.openai_common import check_endpoint, translate, transport
from promptclimb.t2i.pricing import image_price


class OpenAIImages:
    def __init__(self, model: str, config: GeneratorConfig) -> None:
        if not model:
            from promptclimb.llm.base import LLMConfigError

            raise LLMConfigError("give an image model: --generator openai:MODEL, e.g. openai:dall-e-3")
        self.model, self.config = model, config
        self.name = f"openai:{model}"
        where = config.base_url or "api.openai.com"
        self.cache_id = (f"image:{self.name}@{where} size={config.size} quality={config.quality} "
                         f"style={config.style} n={config.n} seed={config.send_seed}")
        self.transport = transport(model, base_url=config.base_url, api_key_env=config.api_key_env,
                                   timeout=config.timeout, max_retries=config.max_retries)
        # DALL-E 3 makes one image a request; others take n.
        self.per_call = 1 if model.startswith("dall-e-3") else config.n
        self.calls = 0

    def __repr__(self) -> str:  # never the key
        return f"OpenAIImages(model={self.model!r}, base_url={self.config.base_url!r})"

    def check(self) -> None:
        check_endpoint(self.transport, "generator")

    def _kwargs(self, prompt: str, seed: int, count: int) -> dict[str, Any]:
        c = self.config
        kwargs: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": count, "size": c.size}
        if c.quality:
            kwargs["quality"] = c.quality
        if c.style:
            kwargs["style"] = c.style
        if not self.model.startswith("gpt-image"):  # gpt-image-* always answer base64
            kwargs["response_format"] = "b64_json"
        if c.send_seed:
            kwargs["extra_body"] = {"seed": seed}
        return kwargs

    def _call(self, prompt: str, seed: int, count: int) -> tuple[list[Image], list[str | None]]:
        client = self.transport.client
        out = translate(lambda: client.images.generate(**self._kwargs(prompt, seed, count)), self.name, "generator")
        images: list[Image] = []
        revised: list[str | None] = []
        for item in getattr(out, "data", None) or []:
            try:
                image = decode_b64(item.b64_json) if item.b64_json else _download(item.url, self.config.timeout)
            except (OSError, ValueError) as err:
                raise RetryableLLMError(f"{self.name} sent an unreadable image ({type(err).__name__})") from None
            images.append(image)
            revised.append(getattr(item, "revised_prompt", None))
        if not images:
            raise LLMReplyError(f"{self.name} returned no image")
        return images, revised

    def generate(self, prompt: str, seed: int) -> Generated:
        images: list[Image] = []
        revised: list[str | None] = []
        while len(images) < self.config.n:
            count = min(self.per_call, self.config.n - len(images))
            got, notes = self.transport.retry.call(partial(self._call, prompt, seed, count), self.transport.limit)
            self.calls += 1
            images.extend(got[:count])
            revised.extend(notes[:count])
        price = image_price(self.model, self.config.quality, self.config.size)
        return Generated(tuple(images), tuple(revised), None if price is None else price * len(images))


def _download(url: str | None, timeout: float) -> Image:
    """An image the provider returned as a URL (its own storage), read into memory."""
    if not url or not url.startswith(("https://", "http://")):
        raise ValueError("no image data and no URL")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # http(s) only, checked above
        data = resp.read()
    with PILImage.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert("RGB")


def build(arg: str, *, config: GeneratorConfig) -> OpenAIImages:
    return OpenAIImages(arg or config.model, config)
