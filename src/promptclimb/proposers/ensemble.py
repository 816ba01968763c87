"""Method ``ensemble``: greedy forward selection of templates into an ensemble scored as one
classifier (per class, the mean of the normalised text embeddings of its filled templates).

The candidates are the starting pool plus ``llm_templates`` templates the LLM writes first
(single-turn requests without scores, ``meta_prompts/ensemble.txt``), each scored alone. The
ensemble starts from the best single template (train score; ties: earlier trial). Each step tries
adding each of the ``candidates`` best single templates not in it yet, one trial (a PromptSet, one
scorer query) per addition, and keeps the addition whose ensemble scores best on train; it stops
when no addition beats the current ensemble, or at ``max_size`` templates. Ties: a higher train
accuracy wins; at equal accuracy the ``tie_break`` metric decides (``mean_margin``: higher;
``cross_entropy``: lower; ``none``: the addition must raise accuracy), then the better-ranked
template. An addition must beat the current ensemble by the same rule, so a step never makes it
worse. The budget cuts a step off cleanly (the Study stops on BudgetExhausted); the Study's
selector then picks the final prompt among every trial, single templates and ensembles alike.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import PromptSet, parse_set_key
from promptclimb.proposers.base import (
    MetaPrompt,
    Proposal,
    ProposalStream,
    Proposer,
    ProposerEnv,
    ProposerSettings,
    ranked,
    task_vars,
)
from promptclimb.vlm.base import ENSEMBLES

Rank = tuple[float, float]


class EnsembleSettings(ProposerSettings):
    max_size: int = Field(8, ge=2, le=64, description="templates in the ensemble at most")
    llm_templates: int = Field(10, ge=0, le=1000,
                               description="new templates asked of the LLM (one request each) before selecting")
    candidates: int = Field(20, ge=1, le=500, description="best single templates tried at each step")
    tie_break: Literal["mean_margin", "cross_entropy", "none"] = Field(
        "mean_margin", description="decides between equal train accuracies")
    max_examples: int = Field(20, ge=0, le=500, description="templates shown in each LLM request")


class EnsembleProposer(Proposer):
    name = "ensemble"
    Settings = EnsembleSettings
    settings: EnsembleSettings

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        self.prompts = MetaPrompt.load("ensemble")

    def scorer_needs(self) -> str | None:
        return ENSEMBLES

    def needs_llm(self) -> bool:
        return self.settings.llm_templates > 0 or self.settings.pool.source == "llm"

    def shows_scores(self) -> bool:
        return False

    def rank(self, trial: Trial) -> Rank:
        """Train accuracy, then the tie-break metric (larger is better in both)."""
        tie = self.settings.tie_break
        metric = trial.metrics.get(tie) if tie != "none" else None
        value = float(metric) if isinstance(metric, int | float) else None
        tie_value = 0.0 if tie == "none" else (-1e18 if value is None else value if tie == "mean_margin" else -value)
        return (trial.train_score or 0.0, tie_value)

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s = self.settings
        for i in range(s.llm_templates):
            shown = list(dict.fromkeys(t.template for t in env.scored() if t.template))[: s.max_examples]
            values = {**task_vars(env.task), "examples": "\n".join(f"- {t}" for t in shown or ["a photo of a {}."])}
            messages = [self.prompts.message("system", **values), self.prompts.message("user", **values)]
            asked = self.ask_templates(env, messages, f"ens/llm/{i}", 1, self.prompts.render("completion", **values))
            yield asked.proposals(f"ens/llm/{i}", int(env.stream), 0, i)
        singles = ranked(env.scored())[: s.candidates]
        if not singles:
            yield [Proposal("ens/start", None, error="no scored template to start from: the starting pool failed")]
            return
        current, members = singles[0], [singles[0].template or ""]
        for size in range(2, s.max_size + 1):
            options = [t.template or "" for t in singles if t.template not in members]
            if not options:
                return
            batch = [Proposal(f"ens/s{size}/{j}", PromptSet((*members, t)), raw=f"added: {t}", iteration=size)
                     for j, t in enumerate(options)]
            trials: list[Trial] = yield batch
            scored = [t for t in trials if t.state is not TrialState.FAILED and t.train_score is not None]
            if not scored:
                return
            best = max(scored, key=lambda t: (self.rank(t), -scored.index(t)))
            if self.rank(best) <= self.rank(current):
                return
            found = parse_set_key(best.template)
            current, members = best, list(found.templates if found else members)


def build(arg: str, *, options: dict[str, Any]) -> EnsembleProposer:
    if arg:
        raise ValueError(f"method 'ensemble' takes no argument after ':' (got {arg!r})")
    return EnsembleProposer(EnsembleSettings.model_validate(options))
