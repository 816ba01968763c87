"""Fakes shipped with the package for tests (ours and users'): a scripted chat LLM and a
deterministic fake scorer."""

from promptclimb.testing.fake_scorer import FakeScorer
from promptclimb.testing.scripted import ScriptedLLM

__all__ = ["FakeScorer", "ScriptedLLM"]
