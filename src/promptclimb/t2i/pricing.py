"""Cost estimates for generated images from a price table (USD per image by model, quality and
size), shipped as data (image_prices.json); ``PROMPTCLIMB_IMAGE_PRICES=FILE`` merges the user's
own over it. Local pipelines and unknown models cost None: free or unpriced, never a silent 0."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path


@cache
def _table(override: str | None) -> dict[str, float]:
    data = json.loads(resources.files("promptclimb.t2i").joinpath("image_prices.json").read_text())
    if override:
        path = Path(override)
        if not path.is_file():
            raise ValueError(f"PROMPTCLIMB_IMAGE_PRICES={override} does not exist: give a JSON file of "
                             '"model|quality|size": USD')
        data.update(json.loads(path.read_text()))
    return {k: float(v) for k, v in data.items() if not k.startswith("_")}


def image_price(model: str, quality: str | None, size: str | None) -> float | None:
    """USD for one image; dated snapshots ("dall-e-3-2024...") are priced as their family."""
    table = _table(os.environ.get("PROMPTCLIMB_IMAGE_PRICES"))
    families = {k.split("|", 1)[0] for k in table}
    family = model if model in families else next(
        (f for f in sorted(families, key=len, reverse=True) if model.startswith(f + "-")), None)
    if family is None:
        return None
    for q, s in ((quality, size), (quality, "*"), ("*", size), ("*", "*")):
        price = table.get(f"{family}|{q or '*'}|{s or '*'}")
        if price is not None:
            return price
    return None
