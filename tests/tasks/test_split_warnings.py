"""Seeds that cannot give different shots, and an empty val split, are said out loud: on the
console, in the run's store and in its report (a 3-seed grid must not silently measure one split
three times)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from promptclimb.cli import main
from promptclimb.tasks.datasets.folder import build_folder


def folder_set(root: Path, per_class: int) -> Path:
    for split, n in (("train", per_class), ("test", 2)):
        for cls in ("cat", "dog", "rose"):
            for i in range(n):
                path = root / split / cls / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(path)
    return root


def test_exactly_k_train_images_with_k_shots_warns_twice(tmp_path: Path) -> None:
    root = folder_set(tmp_path / "set", per_class=4)
    warnings = build_folder(str(root), shots=4, seed=1).warnings
    assert len(warnings) == 2
    assert warnings[0].startswith("seeds cannot give different shots") and "--shots 4" in warnings[0]
    assert warnings[1].startswith("the val split of") and "empty" in warnings[1]
    one, two = (build_folder(str(root), shots=4, seed=s).splits["train"] for s in (1, 2))
    assert {i.id for i in one} == {i.id for i in two}  # what the warning says is true


def test_room_for_other_shots_and_val_gives_no_warning(tmp_path: Path) -> None:
    root = folder_set(tmp_path / "set", per_class=8)
    assert build_folder(str(root), shots=2, seed=1).warnings == []
    only_seeds = build_folder(str(root), shots=7, seed=1).warnings  # different shots, val of 1
    assert only_seeds == []


def test_warning_reaches_console_store_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = folder_set(tmp_path / "set", per_class=2)
    out = tmp_path / "run"
    assert main(["optimize", "--task", f"folder:{root}", "--scorer", "fake", "--method", "best_of_pool",
                 "--shots", "2", "--seed", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "promptclimb: warning: seeds cannot give different shots" in err
    assert "promptclimb: warning: the val split of" in err
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert '<p class="warn">warning: seeds cannot give different shots' in html


def test_a_grid_warns_for_each_cell_whose_seeds_cannot_differ(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = folder_set(tmp_path / "set", per_class=2)
    assert main(["bench", "--tasks", f"folder:{root}", "--shots", "2", "--seeds", "1,2", "--methods", "best_of_pool",
                 "--scorers", "fake", "--budget", "25", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "grid")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "seeds cannot give different shots" in line]
    assert len(lines) == 2 and all(line.startswith("promptclimb: warning: ") for line in lines)
    assert any("seed1" in line for line in lines) and any("seed2" in line for line in lines)
