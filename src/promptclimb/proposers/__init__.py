"""Methods by name: the paper's hill climber, its ablations and the baselines it must beat.
A method factory is ``build(arg, *, options) -> Proposer``."""

from __future__ import annotations

from typing import Any

from promptclimb.proposers.base import Proposal, Proposer, ProposerEnv, ProposerSettings
from promptclimb.registry import Registry

_HC = "promptclimb.proposers.hill_climb"
_BL = "promptclimb.proposers.baselines"

METHODS: Registry[Proposer] = Registry(
    "method",
    {
        "hill_climb": f"{_HC}:build",
        "hill_climb_pos": f"{_HC}:build_positive_only",
        "hill_climb_noscore": f"{_HC}:build_no_score_feedback",
        "hill_climb_single": f"{_HC}:build_single_turn",
    },
    help={
        "hill_climb": "conversational hill climbing with positive and negative examples (the paper)",
        "hill_climb_pos": "ablation: positive examples only",
        "hill_climb_noscore": "ablation: the LLM is never told a score",
        "hill_climb_single": "ablation: single-turn, no conversation history",
    },
)


def build_method(spec: str, options: dict[str, Any] | None = None) -> Proposer:
    return METHODS.create(spec, options=dict(options or {}))


__all__ = ["METHODS", "Proposal", "Proposer", "ProposerEnv", "ProposerSettings", "build_method"]
