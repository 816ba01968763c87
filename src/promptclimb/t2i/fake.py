"""A toy picture world for tests (ours and users'): no model, fully deterministic.

A prompt's colour and shape words become a flat picture: "a red circle on a blue background" is
a red circle centred on blue (first colour = the shape, second = the background). Pictures are
read back into the same three aspects (shape, its colour, background), which gives a colour
histogram similarity backbone ("histogram") and a rule-based judge that truly looks at the pixels:
it compares what it sees with the target and writes feedback and a revised prompt. The test image
server (testing/image_server.py) draws and judges with these functions; so do the in-process
"fake" generator and "scripted" judge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (240, 220, 40), "green": (50, 170, 70),
    "blue": (40, 80, 220), "purple": (130, 60, 180), "pink": (240, 130, 180), "brown": (130, 80, 40),
    "black": (20, 20, 20), "white": (250, 250, 250), "grey": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle")
_PALETTE = np.array(list(COLOURS.values()), dtype=np.float32)
_NAMES = list(COLOURS)
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Scene:
    """What a toy picture shows."""

    shape: str | None
    colour: str | None  # the shape's colour
    background: str

    def describe(self) -> str:
        if self.shape is None:
            return f"a plain {self.background} background"
        return f"a {self.colour} {self.shape} on a {self.background} background"


def parse_scene(text: str) -> Scene:
    words = ["grey" if w == "gray" else w for w in _WORD.findall(text.lower())]
    colours = [w for w in words if w in COLOURS]
    shape = next((w for w in words if w in SHAPES), None)
    if shape is None:
        return Scene(None, None, colours[0] if colours else "white")
    return Scene(shape, colours[0] if colours else "grey", colours[1] if len(colours) > 1 else "white")


def draw(scene: Scene, size: int = 64) -> Image.Image:
    image = Image.new("RGB", (size, size), COLOURS[scene.background])
    if scene.shape is not None and scene.colour is not None:
        pen, lo, hi = ImageDraw.Draw(image), round(size * 0.2), round(size * 0.8) - 1
        fill = COLOURS[scene.colour]
        if scene.shape == "circle":
            pen.ellipse((lo, lo, hi, hi), fill=fill)
        elif scene.shape == "square":
            pen.rectangle((lo, lo, hi, hi), fill=fill)
        else:
            pen.polygon([(size // 2, lo), (hi, hi), (lo, hi)], fill=fill)
    return image


def draw_prompt(prompt: str, size: int = 64) -> Image.Image:
    return draw(parse_scene(prompt), size)


def _labels(image: Image.Image, size: int = 32) -> np.ndarray:
    """Each pixel's nearest palette colour (index), on a small copy."""
    px = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.NEAREST), dtype=np.float32)
    dist = ((px[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1)
    return np.asarray(dist.argmin(-1))


def read_scene(image: Image.Image) -> Scene:
    labels = _labels(image)
    n = labels.shape[0]
    background, centre = _NAMES[labels[1, 1]], _NAMES[labels[n // 2, n // 2]]
    if centre == background:
        return Scene(None, None, background)
    box = labels[round(n * 0.2): round(n * 0.8), round(n * 0.2): round(n * 0.8)]
    fill = float((box == _NAMES.index(centre)).mean())
    shape = "square" if fill > 0.9 else "circle" if fill > 0.65 else "triangle"
    return Scene(shape, centre, background)


def histogram(image: Image.Image) -> np.ndarray:
    counts = np.bincount(_labels(image).ravel(), minlength=len(_NAMES)).astype(np.float64)
    return counts / counts.sum()


class HistogramSimilarity:
    """Palette histogram intersection, in [0, 1]; text is drawn first, then compared."""

    name = "histogram"
    description = "histogram: palette colour histogram intersection (toy backbone for tests)"

    def image_image(self, a: Image.Image, b: Image.Image) -> float:
        return float(np.minimum(histogram(a), histogram(b)).sum())

    def image_text(self, image: Image.Image, text: str) -> float:
        return self.image_image(image, draw_prompt(text))


def apply_edit(scene: Scene, edit: str) -> Scene:
    """'make the circle green' recolours the shape; 'a red background' recolours the background."""
    edited = parse_scene(edit)
    words = set(_WORD.findall(edit.lower()))
    colours = [w for w in _WORD.findall(edit.lower()) if w in COLOURS]
    if "background" in words and colours:
        return replace(scene, background=colours[-1])
    shape = edited.shape or scene.shape
    colour = colours[0] if colours else scene.colour
    return Scene(shape, colour or "grey", scene.background)


def rule_verdict(generated: Image.Image, target: Scene) -> dict[str, Any]:
    """A judge's structured reply: aspect by aspect, a 0-10 score and a revised prompt."""
    got = read_scene(generated)
    colours = []
    if got.colour != target.colour:
        colours.append(f"shape is {got.colour}, should be {target.colour}")
    if got.background != target.background:
        colours.append(f"background is {got.background}, should be {target.background}")
    subject = "matches" if got.shape == target.shape else \
        f"shows {got.shape or 'no shape'}, should show {target.shape or 'no shape'}"
    aspects = {"subject": subject, "colours": "; ".join(colours) or "match", "composition": "centred, as wanted",
               "style": "flat colours, as wanted", "lighting": "even, as wanted"}
    right = (got.shape == target.shape) + (got.colour == target.colour) + (got.background == target.background)
    wrong = [f"{k}: {v}" for k, v in aspects.items() if v not in ("matches", "match") and "as wanted" not in v]
    return {"matches": right == 3, "score": round(10 * right / 3, 1), "aspects": aspects,
            "feedback": "; ".join(wrong) or "the image shows what was asked",
            "revised_prompt": target.describe()}


def vague_description(reference: Image.Image) -> str:
    """What the toy judge says when asked to describe a reference: the shape only, no colours."""
    scene = read_scene(reference)
    return f"a {scene.shape}" if scene.shape else "a plain picture"


def target_scene(intent: str | None, reference: Image.Image | None, edit: str | None) -> Scene:
    base = read_scene(reference) if reference is not None else parse_scene(intent or "")
    return apply_edit(base, edit) if edit else base


def _field(text: str, name: str) -> str | None:
    m = re.search(rf"^{name}:\s*(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else None


def toy_judge_reply(text: str, images: list[tuple[str, Image.Image]]) -> str:
    """The toy judge's JSON reply to a judge request (its text and its (label, image) pairs): with
    generated images, a verdict against the target; with only the reference, a first prompt."""
    intent, edit, prompt = _field(text, "Intent"), _field(text, "Edit"), _field(text, "Prompt")
    reference = next((im for label, im in images if "reference" in label.lower()), None)
    generated = [im for label, im in images if "reference" not in label.lower()]
    if not generated:
        first = f"{prompt}, {edit}" if edit else vague_description(reference) if reference else intent
        return json.dumps({"prompt": first})
    return json.dumps(rule_verdict(generated[0], target_scene(intent, reference, edit)))


BLOCKED = ("forbidden",)


class FakeGenerator:
    """The "fake" generator: draws prompts in-process; a prompt with a blocked word is refused."""

    def __init__(self, n: int = 1, side: int = 64) -> None:
        self.n, self.side = n, side
        self.name = "fake"
        self.cache_id = f"image:fake side={side} n={n}"
        self.prompts: list[str] = []

    def generate(self, prompt: str, seed: int) -> Any:
        from promptclimb.t2i.base import Generated, GenerationRefused

        self.prompts.append(prompt)
        if any(word in prompt.lower() for word in BLOCKED):
            raise GenerationRefused("fake refused the prompt (content policy): it holds a blocked word")
        return Generated(tuple(draw_prompt(prompt, self.side) for _ in range(self.n)), (None,) * self.n, None)


def build_generator(arg: str, *, config: Any) -> FakeGenerator:
    from promptclimb.t2i.images import describe_size

    size = describe_size(config.size)
    return FakeGenerator(config.n, min(256, size[0]) if size else 64)
