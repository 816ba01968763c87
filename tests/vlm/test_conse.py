"""The conse scorer's image backbones: ids parse as before (``conse``, ``conse:T``) and with an
EfficientNet-Lite variant (``conse:lite2``); each variant has its own cache keys; Lite2 loads its
real weights and embeds images differently from Lite0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm import build_scorer
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.conse import ConSEBackbone, parse_arg


@pytest.mark.parametrize(("arg", "options", "expected"), [
    ("", {}, ("lite0", 10)),
    ("5", {}, ("lite0", 5)),
    ("lite2", {}, ("lite2", 10)),
    ("lite1:7", {}, ("lite1", 7)),
    ("", {"image_model": "lite2", "top_t": 3}, ("lite2", 3)),
    ("lite0", {"image_model": "lite2"}, ("lite0", 10)),  # the id wins over options
])
def test_scorer_ids(arg: str, options: dict, expected: tuple[str, int]) -> None:
    assert parse_arg(arg, options) == expected


@pytest.mark.parametrize(("arg", "options"), [("lite9", {}), ("0", {}), ("", {"image_model": "vit"})])
def test_bad_ids_are_one_clear_error(arg: str, options: dict) -> None:
    with pytest.raises(ScorerConfigError, match="image model") as err:
        parse_arg(arg, options)
    assert "\n" not in str(err.value)


def test_each_image_model_has_its_own_cache_keys() -> None:
    lite0, lite2 = ConSEBackbone(), ConSEBackbone(image_model="lite2")
    # the default's keys are unchanged, so existing feature and text caches stay valid
    assert (lite0.id, lite0.preprocess_id) == ("conse:effnet-lite0:minilm-l6:T10",
                                               "resize224-center-crop-tf127-white-alpha")
    assert lite2.id == "conse:effnet-lite2:minilm-l6:T10" and lite2.preprocess_id.startswith("resize260-")
    assert "EfficientNet-Lite2" in lite2.description


def test_lite2_loads_for_real_and_differs_from_lite0(task: ClassificationTask, tmp_path: Path) -> None:
    scorers = {spec: build_scorer(spec, task=task, cache_dir=tmp_path) for spec in ("conse", "conse:lite2")}
    feats = {spec: s.image_features("test")[0] for spec, s in scorers.items()}
    assert feats["conse"].shape == feats["conse:lite2"].shape
    assert not np.allclose(feats["conse"], feats["conse:lite2"], atol=1e-3)
    assert len(list((tmp_path / "features").iterdir())) == 2  # two feature cache entries, not one
    probs = scorers["conse:lite2"].backbone.class_probabilities([task.source.load(task.splits["test"][0].id)])
    assert probs.shape == (1, 1000) and probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= scorers["conse:lite2"].score("a photo of a {}.", "test").value <= 1.0
