"""Conversational hill climbing, the method of Liu et al. (CVPR 2024).

m restarts (independent streams), each with n resets; a reset opens a fresh conversation with the
top-k (positive) and bottom-k (negative) templates seen so far, then runs k iterations: ask for
new template(s), score them, reply with each score and whether it went up or down, ask again.
Ablations: ``negatives=False`` (positive only), ``score_feedback=False`` (the LLM is never told a
score), ``single_turn=True`` (each iteration is a fresh conversation with the updated lists).

Beyond the paper (issue 16): ``feedback="classes"`` also tells the LLM, for the best template of
the opening and for each template it scores, which classes that template gets most wrong and what
they are taken for ("lion: 2 of 5 right, mostly taken for tiger"), from the scorer's per-image
outcomes. A score without per-image classes (an old store, a scorer that does not report them)
falls back to the score alone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from promptclimb.candidate import Trial, TrialState
from promptclimb.llm.base import Message
from promptclimb.proposers.base import (
    MetaPrompt,
    Proposal,
    ProposalStream,
    Proposer,
    ProposerEnv,
    ProposerSettings,
    echo,
    format_score,
    ranked,
    task_vars,
)
from promptclimb.proposers.class_feedback import class_feedback, trial_outcomes


class HillClimbSettings(ProposerSettings):
    restarts: int = Field(3, ge=1, le=64, description="m: independent restarts")
    resets: int = Field(2, ge=1, le=64, description="n: fresh conversations per restart")
    iterations: int = Field(5, ge=1, le=100, description="k: suggestions per conversation")
    per_iteration: int = Field(1, ge=1, le=10, description="templates asked for per iteration")
    top_k: int = Field(10, ge=1, le=100, description="positive examples shown")
    bottom_k: int = Field(10, ge=0, le=100, description="negative examples shown")
    negatives: bool = True
    score_feedback: bool = True
    single_turn: bool = False
    feedback: Literal["score", "classes"] = Field(
        "score", description="score: the paper's one number a template; classes: also its worst classes")
    worst_classes: int = Field(3, ge=1, le=20, description="classes named per template with feedback=classes")


class HillClimbProposer(Proposer):
    name = "hill_climb"
    Settings = HillClimbSettings
    settings: HillClimbSettings

    def __init__(self, settings: ProposerSettings | None = None, meta_prompt: str = "hill_climb"):
        super().__init__(settings)
        self.prompts = MetaPrompt.load(meta_prompt)

    def n_streams(self) -> int:
        return self.settings.restarts

    def shows_scores(self) -> bool:
        return self.settings.score_feedback

    # -- what is sent ---------------------------------------------------------------------
    def _opening(self, env: ProposerEnv) -> tuple[list[Message], list[Trial]]:
        s = self.settings
        best_first = ranked(env.scored())
        top = best_first[: s.top_k]
        bottom = [t for t in reversed(best_first) if t not in top][: s.bottom_k] if s.negatives else []
        values = self._vars(env)
        negative_block = (
            "\n" + self.prompts.render("negative_block", negative=self._listing(bottom)) + "\n"
            if bottom else ""
        )
        start = self.prompts.render("start", **values, positive=self._listing(top) + self._best_classes(env, top),
                                    negative_block=negative_block)
        return [self.prompts.message("system", **values), Message("user", start)], top + bottom

    def _vars(self, env: ProposerEnv) -> dict[str, Any]:
        return {**task_vars(env.task), "n_new": self.settings.per_iteration}

    def _listing(self, trials: list[Trial]) -> str:
        if self.settings.score_feedback:
            return "\n".join(f"- {t.template} ({format_score(t.train_score)})" for t in trials)
        return "\n".join(f"- {t.template}" for t in trials)

    def _classes(self, env: ProposerEnv, trial: Trial) -> str:
        """The template's worst classes, one per line, or "" when feedback is the score alone."""
        if self.settings.feedback != "classes" or not self.settings.score_feedback:
            return ""
        outcomes = trial_outcomes(trial.metrics)
        if outcomes is None:
            return ""
        return class_feedback(*outcomes, env.task.class_names, self.settings.worst_classes)

    def _best_classes(self, env: ProposerEnv, top: list[Trial]) -> str:
        lines = self._classes(env, top[0]) if top else ""
        if not lines:
            return ""
        return "\n" + self.prompts.render("classes_best", template=top[0].template or "", classes=lines)

    def _completion(self, env: ProposerEnv, shown: list[Trial], tried: list[Trial]) -> str:
        """The same state as a list to continue, worst to best, for models that can't chat."""
        rows = {t.template: t for t in (*shown, *tried) if t.ok}
        ordered = sorted(rows.values(), key=lambda t: (t.train_score or 0.0, -t.number))
        return self.prompts.render("completion", **self._vars(env), lines=self._listing(ordered))

    def _feedback(self, env: ProposerEnv, trial: Trial, previous: float | None) -> str:
        line = self._score_feedback(trial, previous)
        classes = self._classes(env, trial) if trial.state is TrialState.COMPLETE else ""
        return f"{line}\n{self.prompts.render('classes_turn', classes=classes)}" if classes else line

    def _score_feedback(self, trial: Trial, previous: float | None) -> str:
        t = {"template": trial.template or "", "score": format_score(trial.train_score),
             "previous": format_score(previous), "error": trial.error or ""}
        rungs = trial.metrics.get("racing") or []
        if trial.state is TrialState.FAILED and rungs and trial.train_score is None and trial.template:
            # pruned by racing (racing.py): worse than the top-k on a subset; its subset score is shown
            # only with score feedback
            return self.prompts.render("feedback_pruned" if self.settings.score_feedback else "feedback_plain",
                                       **t, score_so_far=format_score(rungs[-1].get("score")))
        if trial.state is TrialState.FAILED:
            return self.prompts.render("feedback_failed", **t)
        if trial.state is TrialState.DUPLICATE:
            return self.prompts.render("feedback_duplicate" if self.settings.score_feedback
                                       else "feedback_plain", **t)
        if not self.settings.score_feedback:
            return self.prompts.render("feedback_plain", **t)
        score, prev = trial.train_score or 0.0, previous or 0.0
        section = "feedback_up" if score > prev else "feedback_down" if score < prev else "feedback_same"
        return self.prompts.render(section, **t)

    # -- the loop -------------------------------------------------------------------------
    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s = self.settings
        for reset in range(s.resets):
            if not env.scored():
                yield [Proposal(f"r{env.stream}/n{reset}/start", None,
                                error="no scored template to start from: the starting pool failed",
                                restart=int(env.stream), reset=reset)]
                return
            convo, shown = self._opening(env)
            tried: list[Trial] = []
            previous = shown[0].train_score if shown else None
            for it in range(s.iterations):
                key = f"r{env.stream}/n{reset}/k{it}"
                asked = self.ask_templates(env, convo, key, s.per_iteration,
                                           self._completion(env, shown, tried))
                convo = asked.messages
                trials = yield asked.proposals(key, int(env.stream), reset, it)
                reply = asked.raw if (asked.fresh or asked.repeats) else ""
                if not reply:
                    continue  # recorded as a failed trial; the conversation carries the correction
                tried.extend(trials)
                notes = []
                for trial in trials:
                    notes.append(self._feedback(env, trial, previous))
                    if trial.state is TrialState.COMPLETE:
                        previous = trial.train_score
                if s.single_turn:
                    convo, shown = self._opening(env)
                else:
                    ask = self.prompts.render("ask", **self._vars(env))
                    convo = [*convo, Message("assistant", echo(reply)), Message("user", "\n".join([*notes, ask]))]

def build(arg: str, *, options: dict[str, Any]) -> HillClimbProposer:
    del arg
    return HillClimbProposer(HillClimbSettings.model_validate(options))


def _preset(**preset: Any) -> Any:
    def factory(arg: str, *, options: dict[str, Any]) -> HillClimbProposer:
        return build(arg, options={**preset, **options})

    return factory


build_positive_only = _preset(negatives=False)
build_no_score_feedback = _preset(score_feedback=False)
build_single_turn = _preset(single_turn=True)
build_class_feedback = _preset(feedback="classes")
