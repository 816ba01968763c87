"""device=auto: cuda, then mps, then cpu; explicit devices pass through; open_clip defaults to auto."""

from __future__ import annotations

from types import SimpleNamespace

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
