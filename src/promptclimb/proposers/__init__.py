"""Methods by name: the paper's hill climber, its ablations, the baselines it must beat and its
peers (GEPA, a ProAPO-style evolutionary search).
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
        "hill_climb_classes": f"{_HC}:build_class_feedback",
        "best_of_pool": f"{_BL}:build_best_of_pool",
        "random_pool": f"{_BL}:build_random_pool",
        "fixed": f"{_BL}:build_fixed",
        "llm_no_feedback": f"{_BL}:build_llm_no_feedback",
        "ape": f"{_BL}:build_ape",
        "iterative_ape": f"{_BL}:build_iterative_ape",
        "opro": f"{_BL}:build_opro",
        "evolve": "promptclimb.proposers.evolve:build",
        "gepa": "promptclimb.proposers.gepa_adapter:build",
        "ensemble": "promptclimb.proposers.ensemble:build",
        "describe": "promptclimb.proposers.describe:build",
        "describe_select": "promptclimb.proposers.describe:build_select",
        "hill_climb+describe": "promptclimb.proposers.describe:build_after_hill_climb",
    },
    help={
        "hill_climb": "conversational hill climbing with positive and negative examples (the paper)",
        "hill_climb_pos": "ablation: positive examples only",
        "hill_climb_noscore": "ablation: the LLM is never told a score",
        "hill_climb_single": "ablation: single-turn, no conversation history",
        "hill_climb_classes": "hill climbing told each template's worst classes too (feedback=classes)",
        "best_of_pool": "baseline: score the starting pool, keep the best (no LLM)",
        "random_pool": "baseline: score `picks` random pool templates (no LLM)",
        "fixed": 'baseline: given templates: "fixed:a photo of a {}.", "fixed:handwritten", or "fixed:FILE" '
                 "(an exported best_templates.txt or best_prompt_set.json); option as_ensemble=true also "
                 "scores them together as one ensemble",
        "llm_no_feedback": "baseline: LLM asked with no scores and no conversation",
        "ape": "baseline: APE, paraphrase the best pool templates",
        "iterative_ape": "baseline: APE in rounds, from the current best",
        "opro": "baseline: OPRO, scored history best last, one request a step",
        "evolve": "peer: ProAPO-style evolutionary search over template phrases (one LLM request)",
        "ensemble": "greedy forward selection of pool and LLM templates into one ensemble classifier "
                    "(mean of text embeddings; needs a zero-shot scorer)",
        "describe": "per-class descriptions written by the LLM, the worst classes' rewritten with their "
                    "errors fed back (CuPL-style; needs a zero-shot scorer)",
        "describe_select": "describe's first descriptions only, each class's kept if 2 more train images "
                           "come out right (combine=descriptions, class_select, class_gain=2, rounds=0)",
        "hill_climb+describe": "hill_climb, then describe from its best template",
        "gepa": "peer: GEPA (the gepa package: pip install promptclimb with the gepa extra) with class-level feedback",
    },
)


def build_method(spec: str, options: dict[str, Any] | None = None) -> Proposer:
    return METHODS.create(spec, options=dict(options or {}))


__all__ = ["METHODS", "Proposal", "Proposer", "ProposerEnv", "ProposerSettings", "build_method"]
