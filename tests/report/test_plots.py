"""Budget-curve figures: a panel without data is left out (no empty "no data" panel), nothing is
drawn without any data, and one run is not described as a mean over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from promptclimb.report.plots import curve_title, plot_curves


def points(tokens: bool, test: bool) -> list[dict[str, Any]]:
    return [{"queries": q, "tokens": 100 * q if tokens else 0, "best_train": 0.4 + q / 100,
             "best_test": 0.3 + q / 100 if test else None} for q in range(1, 11)]


def panels(path: Path | None) -> int:
    assert path is not None
    with Image.open(path) as img:
        return round(img.width / 550)  # 5 inches at 110 dpi per panel


def test_only_panels_with_data_are_drawn(tmp_path: Path) -> None:
    assert panels(plot_curves({"hill_climb": [points(True, True)]}, tmp_path / "a.png", "t")) == 3
    assert panels(plot_curves({"best_of_pool": [points(False, True)]}, tmp_path / "b.png", "t")) == 2
    assert panels(plot_curves({"best_of_pool": [points(False, False)]}, tmp_path / "c.png", "t")) == 1
    with_images = [{**p, "images": 40 * p["queries"]} for p in points(True, True)]
    assert panels(plot_curves({"hill_climb": [with_images]}, tmp_path / "e.png", "t")) == 4
    empty = [{"queries": 1, "tokens": 0, "best_train": None, "best_test": None}]
    assert plot_curves({"m": [empty]}, tmp_path / "d.png", "t") is None
    assert not (tmp_path / "d.png").exists()


def test_single_run_wording() -> None:
    assert curve_title("hill_climb on demo", several=False) == "hill_climb on demo  (one run)"
    assert "mean over seeds, band: min-max" in curve_title("grid", several=True)
