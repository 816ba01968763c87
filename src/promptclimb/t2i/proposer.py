"""Proposers for text-to-image runs: what to generate next, from what the judge and the
similarity said of the images so far.

A T2I prompt has no ``{}``: PromptCandidate is the Candidate of a free prompt, so the Study,
Store and selection handle it unchanged. ``hill_climb`` is the paper's conversation aimed at an
image model: m restarts, n resets each opening with the best and worst prompts so far, k
iterations each replying with the judge's feedback, its suggested prompt and the similarity.
``judge`` asks no LLM: the next prompt is the judge's revision of the latest image, or of the best
one when the latest did worse (the paper's GPT-4V loop, where the judge writes the prompt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from promptclimb.candidate import Candidate, CandidateRejected, Trial, TrialState
from promptclimb.llm.base import CacheMiss, ChatRequest, LLMConfigError, LLMError, Message
from promptclimb.proposers.base import Proposal, ProposalStream, Proposer, ProposerEnv, ProposerSettings, ranked
from promptclimb.t2i.base import T2ITask, meta_prompt, parse_json_object

MAX_PROMPT_CHARS = 1200
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d{1,2}[.)])\s+")
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:new |improved |revised |better |final )?prompt\s*\d*(?:\*\*)?\s*[:=-]\s*",
                    re.IGNORECASE)
_CHATTER = re.compile(r"^(?:sure|here(?:'s| is| are)|certainly|of course|okay|ok)\b", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»*"


@dataclass(frozen=True, order=True)
class PromptCandidate(Candidate):
    """A text-to-image prompt: one line, not empty, bounded length; no placeholder."""

    def __post_init__(self) -> None:
        t = self.template
        if not t.strip() or "\n" in t:
            raise CandidateRejected("a prompt is one non-empty line")
        if len(t) > MAX_PROMPT_CHARS:
            raise CandidateRejected(f"prompt longer than {MAX_PROMPT_CHARS} characters")

    def fill(self, class_name: str) -> str:
        return self.template


def parse_prompt(text: str) -> tuple[PromptCandidate | None, str]:
    """The prompt in an LLM reply (JSON {"prompt": ...}, a labelled line, or the first plain line)."""
    obj = parse_json_object(text or "")
    lines = [str(obj["prompt"])] if obj and isinstance(obj.get("prompt"), str) else (text or "").splitlines()
    for line in lines:
        s = line.strip()
        if s.startswith("```"):
            continue
        s = _LABEL.sub("", _BULLET.sub("", s)).strip().strip(_QUOTES).strip()
        if not s or s.endswith(":") or _CHATTER.match(s) or len(s) < 3:
            continue
        try:
            return PromptCandidate(" ".join(s.split())), ""
        except CandidateRejected as err:
            return None, str(err)
    return None, "empty reply" if not (text or "").strip() else "no prompt line in the reply"


def similarity_of(t: Trial) -> str:
    value = t.metrics.get("similarity")
    return "n/a" if value is None else f"{float(value):.3f}"


def judge_score_of(t: Trial) -> str:
    value = t.metrics.get("judge_score")
    return "n/a" if value is None else f"{float(value):g}"


class T2ISettings(ProposerSettings):
    restarts: int = Field(1, ge=1, le=16, description="m: independent restarts")
    resets: int = Field(1, ge=1, le=16, description="n: fresh conversations per restart")
    iterations: int = Field(4, ge=1, le=100, description="k: prompts per conversation")
    top_k: int = Field(3, ge=1, le=20, description="best prompts shown at a reset")
    bottom_k: int = Field(2, ge=0, le=20, description="worst prompts shown at a reset")
    show_revision: bool = Field(True, description="show the judge's suggested prompt to the LLM")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(300, ge=16, le=4096)
    max_retries: int = Field(1, ge=0, le=5)


class _T2IProposer(Proposer):
    Settings = T2ISettings
    settings: T2ISettings

    def __init__(self, settings: ProposerSettings | None, task: T2ITask) -> None:
        super().__init__(settings)
        self.task = task
        self.prompts = meta_prompt("proposer")

    def n_streams(self) -> int:
        return self.settings.restarts

    def run_pool(self, env: ProposerEnv) -> ProposalStream:
        batch = []
        for i, text in enumerate(self.task.start_prompts):
            cand, why = parse_prompt(text)
            batch.append(Proposal(f"pool/{i}", cand, raw=text, error=None if cand else f"start prompt: {why}"))
        yield batch


class T2IHillClimb(_T2IProposer):
    name = "t2i_hill_climb"

    def _row(self, t: Trial) -> str:
        return self.prompts.render("row", prompt=t.template or "", similarity=similarity_of(t),
                                   judge_score=judge_score_of(t), feedback=t.metrics.get("feedback") or "n/a")

    def _opening(self, env: ProposerEnv) -> list[Message]:
        s, task = self.settings, self.task
        best_first = ranked(env.scored())
        top = best_first[: s.top_k]
        shown = top + [t for t in reversed(best_first) if t not in top][: s.bottom_k]
        described = self.prompts.render(f"task_{task.kind}", intent=task.intent or "", edit=task.edit or "",
                                        source_prompt=task.source_prompt or "")
        start = self.prompts.render("start", task=described, listing="\n".join(self._row(t) for t in shown))
        return [self.prompts.message("system"), Message("user", start)]

    def _feedback(self, env: ProposerEnv, trial: Trial, best: float | None) -> str:
        if trial.state is TrialState.FAILED:
            return self.prompts.render("feedback_failed", prompt=trial.template or "", error=trial.error or "")
        if trial.state is TrialState.DUPLICATE:
            first = env.lookup(trial.template or "") or trial
            return self.prompts.render("feedback_duplicate", prompt=trial.template or "",
                                       similarity=similarity_of(first))
        score, prev = trial.train_score or 0.0, best or 0.0
        trend = ("better than the best so far" if score > prev else "worse than the best so far" if score < prev
                 else "as good as the best so far")
        revised = trial.metrics.get("revised_prompt") if self.settings.show_revision else None
        text = self.prompts.render("feedback", prompt=trial.template or "", similarity=similarity_of(trial),
                                   judge_score=judge_score_of(trial), trend=trend,
                                   feedback=trial.metrics.get("feedback") or "n/a")
        return text + "\n" + self.prompts.render("suggestion", revised=revised) if revised else text

    def _ask(self, env: ProposerEnv, messages: list[Message], key: str) -> tuple[
            PromptCandidate | None, str, list[Message], int | None, str]:
        s, raw, reason, exchange_id = self.settings, "", "no reply", None
        for attempt in range(s.max_retries + 1):
            request = ChatRequest(tuple(messages), temperature=min(2.0, s.temperature + 0.3 * attempt),
                                  max_tokens=s.max_tokens, seed=env.derived_seed(key, attempt))
            try:
                answer = env.chat(request)
            except (LLMConfigError, CacheMiss):
                raise
            except LLMError as err:
                return None, raw, messages, exchange_id, f"LLM error: {err}"
            raw, exchange_id = answer.reply.text, answer.exchange_id
            cand, reason = parse_prompt(raw)
            if cand is not None:
                return cand, raw, messages, exchange_id, ""
            if attempt < s.max_retries:
                messages = [*messages, Message("assistant", raw),
                            Message("user", self.prompts.render("corrective", reason=reason))]
        return None, raw, messages, exchange_id, reason

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s, restart = self.settings, int(env.stream)
        for reset in range(s.resets):
            if not env.scored():
                yield [Proposal(f"r{restart}/n{reset}/start", None, error="no image could be scored to start from",
                                restart=restart, reset=reset)]
                return
            convo = self._opening(env)
            for it in range(s.iterations):
                key = f"r{restart}/n{reset}/k{it}"
                best = max((t.train_score or 0.0) for t in env.scored())
                cand, raw, convo, exchange_id, reason = self._ask(env, convo, key)
                if cand is None:
                    yield [Proposal(f"{key}/failed", None, raw, reason, restart, reset, it, exchange_id)]
                    continue
                trials = yield [Proposal(f"{key}/c0", cand, raw, None, restart, reset, it, exchange_id)]
                note = self._feedback(env, trials[0], best)
                convo = [*convo, Message("assistant", raw),
                         Message("user", note + "\n\n" + self.prompts.render("ask"))]


class JudgeRevise(_T2IProposer):
    name = "t2i_judge"
    uses_llm = False

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        restart = int(env.stream)
        for it in range(self.settings.iterations):
            scored = env.scored()
            if not scored:
                return
            tried = {t.template for t in env.history() if t.template}
            latest, best = scored[-1], ranked(scored)[0]
            order = [latest, best] if (latest.train_score or 0) >= (best.train_score or 0) else [best, latest]
            revisions = [str(t.metrics.get("revised_prompt") or "") for t in order]
            fresh = [r for r in revisions if r and r not in tried]
            if not fresh:
                return  # the judge has nothing new to suggest: converged
            cand, why = parse_prompt(fresh[0])
            yield [Proposal(f"r{restart}/n0/k{it}/c0", cand, fresh[0], None if cand else why, restart, 0, it)]


def build_hill_climb(arg: str, *, options: dict[str, Any], task: T2ITask) -> T2IHillClimb:
    return T2IHillClimb(T2ISettings.model_validate(options), task)


def build_judge_revise(arg: str, *, options: dict[str, Any], task: T2ITask) -> JudgeRevise:
    return JudgeRevise(T2ISettings.model_validate(options), task)
