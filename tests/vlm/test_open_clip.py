"""open_clip scorer: a tiny random-init model must score exactly as open_clip's own zero-shot classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import promptclimb.vlm.torch_compat as torch_compat
from promptclimb.candidate import Score
from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm import ScorerConfigError, build_scorer
from promptclimb.vlm.zero_shot import ZeroShotScorer

torch_compat.ensure_torchvision_importable()
import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.zero_shot_classifier import build_zero_shot_classifier  # noqa: E402

ARCH = "PcTiny-Test"
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module", autouse=True)
def tiny_arch(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("oc") / f"{ARCH}.json"
    path.write_text(json.dumps(TINY))
    open_clip.add_model_config(path)


def reference_logits(task: ClassificationTask, templates: list[str], split: str, seed: int = 0) -> np.ndarray:
    """open_clip's zero-shot recipe on its own: builder weights times normalised image features."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(ARCH)
    fns: list[Any] = [lambda c, t=t: t.format(c) for t in templates]
    weights = build_zero_shot_classifier(model, tokenizer, list(task.class_names), fns, num_classes_per_batch=None)
    items = task.splits[split]
    with torch.no_grad():
        images = torch.stack([preprocess(task.source.load(i.id)) for i in items])
        feats = model.encode_image(images, normalize=True)
    return (feats @ weights).numpy()


def check_score(score: Score, task: ClassificationTask, split: str, logits: np.ndarray) -> None:
    """Same per-image correctness, and (a sensitive check) the same mean true-class margin."""
    labels = np.array([i.label for i in task.splits[split]])
    assert score.per_item == tuple((logits.argmax(axis=1) == labels).astype(float).tolist())
    assert score.value == pytest.approx(float(np.mean(score.per_item)))
    true = logits[np.arange(len(labels)), labels]
    logits[np.arange(len(labels)), labels] = -np.inf
    assert score.metrics["mean_margin"] == pytest.approx(float(np.mean(true - logits.max(axis=1))), rel=1e-4, abs=1e-6)


def test_accuracy_equals_open_clip_zero_shot_builder(task: ClassificationTask, tmp_path: Path) -> None:
    scorer = build_scorer(f"open_clip:{ARCH}/random", task=task, cache_dir=tmp_path / "c", options={"batch_size": 3})
    assert "random" in scorer.description and ARCH in scorer.description
    seen = set()
    for template in ("a photo of a {}.", "{}", "an origami {} on the table"):
        logits = reference_logits(task, [template], "test")
        seen.update(logits.argmax(axis=1).tolist())
        check_score(scorer.score(template, "test"), task, "test", logits)
    assert len(seen) > 1  # the model tells images apart, so equality is not trivially all-one-class


def test_ensemble_equals_builder_with_two_templates(task: ClassificationTask, tmp_path: Path) -> None:
    scorer = build_scorer(f"open_clip:{ARCH}/random", task=task, cache_dir=tmp_path / "c", options={})
    templates = ["a photo of a {}.", "a blurry drawing of the {}"]
    assert isinstance(scorer, ZeroShotScorer)
    ensemble = scorer.score_ensemble(templates, "train")
    check_score(ensemble, task, "train", reference_logits(task, templates, "train"))
    assert ensemble.metrics != scorer.score(templates[1], "train").metrics  # the ensemble is not one template


def test_local_checkpoint_and_seed(task: ClassificationTask, tmp_path: Path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(ARCH, pretrained=None)
    ckpt = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), ckpt)
    from_ckpt = build_scorer(f"open_clip:{ARCH}//{ckpt}", task=task, cache_dir=tmp_path / "a", options={})
    random0 = build_scorer(f"open_clip:{ARCH}/random", task=task, cache_dir=tmp_path / "b", options={})
    random1 = build_scorer(f"open_clip:{ARCH}/random", task=task, cache_dir=tmp_path / "b", options={"seed": 1})
    assert from_ckpt.score("a {}.", "test") == random0.score("a {}.", "test")
    ids = {s.backbone.id for s in (from_ckpt, random0, random1) if isinstance(s, ZeroShotScorer)}
    assert len(ids) == 3  # distinct weights never share cached features


@pytest.mark.parametrize(("spec", "message"), [
    ("NoSuchNet/openai", "unknown open_clip architecture 'NoSuchNet'; e.g. "),
    ("RN50/not-a-tag", "tags: openai, yfcc15m, cc12m"),
    ("RN50//does/not/exist.pt", "checkpoint not found at /does/not/exist.pt or "),
    ("", "open_clip needs a model"),
])
def test_bad_specs(task: ClassificationTask, tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ScorerConfigError, match=message.replace(".", r"\.").replace("'", ".")) as err:
        build_scorer(f"open_clip:{spec}", task=task, cache_dir=tmp_path, options={})
    assert "\n" not in str(err.value)


def test_broken_checkpoint(task: ClassificationTask, tmp_path: Path) -> None:
    ckpt = tmp_path / "broken.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ScorerConfigError, match="does not load into PcTiny-Test"):
        build_scorer(f"open_clip:{ARCH}//{ckpt}", task=task, cache_dir=tmp_path, options={})


def test_offline_weights_fail_fast_with_the_fix(task: ClassificationTask, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    import promptclimb.vlm.hf_clip as hf_clip

    monkeypatch.setattr(hf_clip, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    with pytest.raises(ScorerConfigError, match="connect to the network once, or pass a local checkpoint") as err:
        build_scorer("open_clip:RN50/openai", task=task, cache_dir=tmp_path, options={})
    assert "open_clip:RN50//path/to/ckpt.pt" in str(err.value) and "\n" not in str(err.value)
