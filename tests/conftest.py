"""Shared fixtures: every test gets its own cache dir, so no test sees another's LLM cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PROMPTCLIMB_CACHE", str(cache))
    return cache
