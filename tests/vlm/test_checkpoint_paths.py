"""open_clip checkpoint paths as users type them: absolute (two or three slashes), relative, `~`;
a missing file's error names where it looked and a form that then loads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import promptclimb.vlm.torch_compat as torch_compat
from promptclimb.vlm.base import ScorerConfigError
from promptclimb.vlm.open_clip_backbone import parse_spec

torch_compat.ensure_torchvision_importable()  # as tests/vlm/test_open_clip.py: open_clip imports torchvision


@pytest.fixture
def ckpt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ckpts").mkdir()
    path = tmp_path / "ckpts" / "model.pt"
    path.write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return path


@pytest.mark.parametrize("typed", [
    "RN50/{abs}",            # ARCH//home/me/ckpt.pt: the form README shows, read as absolute
    "RN50//{abs}",           # three slashes, the old way to say absolute
    "RN50/ckpts/model.pt",   # relative to the working directory
    "RN50/./ckpts/model.pt",
    "RN50/~/ckpts/model.pt",
    "RN50//~/ckpts/model.pt",
    "RN50//ckpts/model.pt",  # the old relative reading, when no /ckpts/model.pt exists
])
def test_every_typed_form_finds_the_file(ckpt: Path, typed: str) -> None:
    spec = parse_spec(typed.format(abs=ckpt))
    assert spec.model_name == "RN50" and spec.pretrained == str(ckpt.resolve())
    assert spec.label.startswith(f"RN50//{ckpt.resolve()}@")


def test_a_bare_file_name_in_the_working_directory(ckpt: Path) -> None:
    (ckpt.parent.parent / "local.safetensors").write_bytes(b"w")
    assert parse_spec("RN50/local.safetensors").pretrained == str(ckpt.parent.parent / "local.safetensors")


def test_missing_checkpoint_error_is_one_line_with_a_form_that_works(ckpt: Path) -> None:
    wanted = ckpt.parent / "later.pt"
    with pytest.raises(ScorerConfigError) as err:
        parse_spec(f"RN50/{wanted}")
    message = str(err.value)
    assert "\n" not in message and f"not found at {wanted}" in message
    suggested = re.search(r"e\.g\. open_clip:(\S+)", message)
    assert suggested is not None
    wanted.write_bytes(b"w")
    assert parse_spec(suggested.group(1)).pretrained == str(wanted)


def test_tags_and_random_are_not_paths(ckpt: Path) -> None:
    assert parse_spec("RN50/openai").pretrained == "openai"
    assert parse_spec("RN50/random").random
    with pytest.raises(ScorerConfigError, match="unknown pretrained tag 'nope'"):
        parse_spec("RN50/nope")
