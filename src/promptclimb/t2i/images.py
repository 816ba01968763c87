"""Image files of a text-to-image run: every generated image is saved under RUN/images/ as a PNG
that carries its prompt and seed (PNG text chunks) with a JSON sidecar beside it; the user's
reference image is copied to RUN/reference.png once, so the run never depends on the original
file again. Images are handed to endpoints only as data URLs built here."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

IMAGES_DIR = "images"
REFERENCE_FILE = "reference.png"
MAX_REFERENCE_SIDE = 2048


@dataclass(frozen=True)
class SavedImage:
    """One generated image as recorded: its path relative to the run directory and its origin."""

    path: str
    sha256: str
    prompt: str
    seed: int
    model: str
    index: int
    revised_prompt: str | None = None  # what the provider says it drew (DALL-E 3 rewrites prompts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SavedImage:
        return cls(**json.loads(text))


def png_bytes(image: Image.Image, text: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_generated(run_dir: Path, stem: str, index: int, image: Image.Image, *, prompt: str, seed: int,
                   model: str, revised_prompt: str | None = None) -> SavedImage:
    """Write images/STEM_INDEX.png (prompt and seed inside) and its .json sidecar."""
    folder = run_dir / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}_{index}.png"
    data = png_bytes(image, {"prompt": prompt, "seed": str(seed), "model": model})
    _atomic_write(path, data)
    saved = SavedImage(f"{IMAGES_DIR}/{path.name}", hashlib.sha256(data).hexdigest(), prompt, seed, model, index,
                       revised_prompt)
    _atomic_write(path.with_suffix(".json"), (saved.to_json() + "\n").encode())
    return saved


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist: give an existing PNG or JPEG file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not a readable image ({type(err).__name__}): give a PNG or JPEG file") \
            from None


def copy_reference(source: Path, run_dir: Path) -> Path:
    """The user's image, as RUN/reference.png (at most 2048 px a side); stays on this machine
    except for the judge endpoint the user configured."""
    image = open_image(source)
    image.thumbnail((MAX_REFERENCE_SIDE, MAX_REFERENCE_SIDE))
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / REFERENCE_FILE
    _atomic_write(out, png_bytes(image))
    return out


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def decode_b64(data: str) -> Image.Image:
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        im.load()
        return im.convert("RGB")


def thumbnail_data_url(path: Path, side: int = 256) -> str:
    """A small JPEG copy as a data URL, so a report opens anywhere with no server."""
    image = open_image(path)
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def load_saved(run_dir: Path, records: list[SavedImage]) -> list[tuple[SavedImage, Image.Image]] | None:
    """Recorded images read back, or None when any file is gone or changed (then regenerate)."""
    out: list[tuple[SavedImage, Image.Image]] = []
    for rec in records:
        path = run_dir / rec.path
        if not path.is_file() or sha256_file(path) != rec.sha256:
            return None
        out.append((rec, open_image(path)))
    return out


def describe_size(value: Any) -> tuple[int, int] | None:
    """'1024x1024' -> (1024, 1024); anything else (e.g. 'auto') -> None."""
    w, sep, h = str(value).partition("x")
    return (int(w), int(h)) if sep and w.isdigit() and h.isdigit() else None
