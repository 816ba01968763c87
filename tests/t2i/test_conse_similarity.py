"""The embedded offline similarity backbone (ConSE: EfficientNet-Lite0 + MiniLM) in a real run:
it loads with no network and ranks the exact regeneration of the reference first."""

from __future__ import annotations

from pathlib import Path

import pytest
from t2i_helpers import REFERENCE, flags

from promptclimb.cli import main
from promptclimb.store import RunStore
from promptclimb.t2i import SIMILARITIES
from promptclimb.t2i.fake import draw_prompt
from promptclimb.testing.image_server import ImageServer


@pytest.mark.slow
def test_conse_similarity_in_an_inversion(server: ImageServer, reference: Path, tmp_path: Path) -> None:
    sim = SIMILARITIES.create("conse", options={})
    red = draw_prompt("a red circle on a blue background", 224)
    assert sim.image_image(red, red) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= sim.image_text(red, "a dog") < sim.image_text(red, "a red ball") <= 1.0

    run = tmp_path / "run"
    argv = [*flags(server, "--iterations", "2"), "--scorer", "conse", "--method", "judge", "--out", str(run)]
    assert main(["invert", str(reference), *argv]) == 0
    store = RunStore.open(run)
    trials = store.trials()
    assert [t.template for t in trials] == ["a circle", REFERENCE]
    assert trials[1].train_score is not None and trials[0].train_score is not None
    assert trials[1].train_score > trials[0].train_score and trials[1].train_score > 0.9
    assert store.config["scorer"] == "conse"
    store.close()
