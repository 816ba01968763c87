"""device=auto: cuda, then mps, then cpu; explicit devices pass through; open_clip defaults to auto."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from promptclimb.vlm.device import resolve_device


def fake_torch(cuda: bool, mps: bool | None) -> SimpleNamespace:
    backends = SimpleNamespace() if mps is None else SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps))
    return SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: cuda), backends=backends)


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (False, None, "cpu"), (True, None, "cuda"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool | None,
                                            expected: str) -> None:
    monkeypatch.setitem(__import__("sys").modules, "torch", fake_torch(cuda, mps))
    assert resolve_device("auto") == expected


@pytest.mark.parametrize("name", ["cpu", "cuda:1", "mps"])
def test_explicit_devices_are_kept(name: str) -> None:
    assert resolve_device(name) == name


@pytest.mark.parametrize(("module", "spec"), [("open_clip_backbone", "ViT-B-32/random"), ("hf_clip", "org/model")])
def test_clip_scorers_default_to_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, module: str, spec: str) -> None:
    import importlib

    mod = importlib.import_module(f"promptclimb.vlm.{module}")
    asked: list[str] = []
    monkeypatch.setattr(mod, "resolve_device", lambda name: asked.append(name) or "cuda")
    monkeypatch.setattr(mod, "shared_backbone", lambda *args: SimpleNamespace(args=args, description="x"))
    monkeypatch.setattr(mod, "ZeroShotScorer", lambda name, backbone, *a, **k: backbone)
    for options, expected in (({}, "auto"), ({"device": "cpu"}, "cpu")):
        backbone = mod.build(spec, task=None, cache_dir=tmp_path, options=options)
        assert asked[-1] == expected and "cuda" in backbone.args
