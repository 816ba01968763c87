"""hf scorer: a tiny random CLIPModel saved with save_pretrained must score as a direct computation does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import promptclimb.vlm.torch_compat as torch_compat
from promptclimb.tasks.classification import ClassificationTask
from promptclimb.vlm import ScorerConfigError, build_scorer

torch_compat.ensure_torchvision_importable()
import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoProcessor,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTokenizer,
    PreTrainedModel,
    SiglipConfig,
    SiglipModel,
)


def byte_vocab() -> dict[str, int]:
    """CLIP's byte-level alphabet (with and without end-of-word) and its two special tokens: no merges needed."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = [chr(b) for b in keep] + [chr(256 + n) for n in range(256 - len(keep))]
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
          "image_size": 32, "patch_size": 8}


def save_tiny(folder: Path, model: PreTrainedModel) -> Path:
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    tokenizer = CLIPTokenizer(vocab=byte_vocab(), merges=[])
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def text_config(max_positions: int) -> dict[str, int]:
    vocab = byte_vocab()
    eos = vocab["<|endoftext|>"]
    return {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": max_positions,
            "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": eos, "pad_token_id": eos}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text_config(77), vision_config=VISION, projection_dim=16)
    return save_tiny(tmp_path_factory.mktemp("hf") / "tiny-clip", CLIPModel(config))


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SigLIP was trained on max_length-padded text: its embeddings change with the padding."""
    torch.manual_seed(0)
    config = SiglipConfig(text_config={**text_config(24), "projection_size": 32}, vision_config=VISION)
    return save_tiny(tmp_path_factory.mktemp("hf") / "tiny-siglip", SiglipModel(config))


def direct_logits(folder: Path, task: ClassificationTask, template: str, split: str,
                  padding: str = "longest") -> np.ndarray:
    model, processor = AutoModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)
    items = task.splits[split]
    with torch.no_grad():
        img = model.get_image_features(**processor(images=[task.source.load(i.id) for i in items],
                                                   return_tensors="pt")).pooler_output
        txt = model.get_text_features(**processor(text=[template.format(c) for c in task.class_names], padding=padding,
                                                  max_length=model.config.text_config.max_position_embeddings,
                                                  truncation=True, return_tensors="pt")).pooler_output
    img, txt = img / img.norm(dim=1, keepdim=True), txt / txt.norm(dim=1, keepdim=True)
    return (img @ txt.T).numpy()


@pytest.mark.parametrize(("folder", "kind", "padding"), [("model_dir", "CLIPModel", "longest"),
                                                         ("siglip_dir", "SiglipModel", "max_length")])
def test_accuracy_equals_direct_computation(folder: str, kind: str, padding: str, task: ClassificationTask,
                                            tmp_path: Path, request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue(folder)
    scorer = build_scorer(f"hf:{model_dir}", task=task, cache_dir=tmp_path, options={"batch_size": 5})
    assert kind in scorer.description
    seen = set()
    for template in ("a photo of a {}.", "{}", "a large {} in the dark"):
        logits = direct_logits(model_dir, task, template, "test", padding)
        seen.update(logits.argmax(axis=1).tolist())
        labels = np.array([i.label for i in task.splits["test"]])
        score = scorer.score(template, "test")
        assert score.per_item == tuple((logits.argmax(axis=1) == labels).astype(float).tolist())
        assert score.value == pytest.approx(float(np.mean(score.per_item)))
        true = logits[np.arange(len(labels)), labels]
        logits[np.arange(len(labels)), labels] = -np.inf
        margin = float(np.mean(true - logits.max(axis=1)))
        assert score.metrics["mean_margin"] == pytest.approx(margin, rel=1e-4, abs=1e-6)
    assert len(seen) > 1


def test_missing_folder(task: ClassificationTask, tmp_path: Path) -> None:
    with pytest.raises(ScorerConfigError, match=r"no model folder .*save_pretrained"):
        build_scorer(f"hf:{tmp_path}/nothing/here", task=task, cache_dir=tmp_path, options={})


def test_folder_without_a_model(task: ClassificationTask, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScorerConfigError, match="hf: cannot load") as err:
        build_scorer(f"hf:{tmp_path / 'empty'}", task=task, cache_dir=tmp_path, options={})
    assert "\n" not in str(err.value)


def test_hub_id_offline_fails_fast_with_the_fix(task: ClassificationTask, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    import promptclimb.vlm.hf_clip as hf_clip

    monkeypatch.setattr(hf_clip, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    with pytest.raises(ScorerConfigError, match=r"hub unreachable and not cached.*connect to the network once"):
        build_scorer("hf:openai/clip-vit-base-patch32", task=task, cache_dir=tmp_path, options={})
