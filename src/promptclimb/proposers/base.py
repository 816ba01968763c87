"""The Proposer protocol: proposing candidates, kept apart from the search loop.

A proposer is a set of generators ("streams"): each yields batches of Proposals and is sent back
the Trials the Study made of them. Stream "pool" scores the starting pool and is shared; streams
0..n_streams-1 are independent (the hill climber's restarts), so the Study may run them
concurrently. Every proposal carries a position key that is the same on every run with the same
seed, which is how a resumed run finds what it already scored.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from promptclimb.candidate import (
    Candidate,
    CandidateRejected,
    Trial,
    TrialState,
    parse_candidates,
    parse_template,
)
from promptclimb.llm.base import ChatReply, ChatRequest, Message
from promptclimb.prompt_set import PromptSet, is_set_key
from promptclimb.tasks.base import TaskInfo

ProposalStream = Generator[list["Proposal"], list[Trial], None]
# A reply is echoed back into the conversation at most this long: a 1 MB reply is not resent
# (and paid for) on every later turn.
ECHO_CHARS = 2000


def echo(raw: str) -> str:
    return raw[:ECHO_CHARS]


@dataclass(frozen=True)
class Proposal:
    """A candidate to score (or a failed attempt to get one), with where it came from: a template
    (Candidate) or a prompt set (several templates, per-class descriptions)."""

    key: str
    candidate: Candidate | PromptSet | None
    raw: str = ""
    error: str | None = None
    restart: int = 0
    reset: int = 0
    iteration: int = 0
    exchange_id: int | None = None

    @property
    def prompt(self) -> str | None:
        """What a trial stores of it: the template, or the prompt set's key (prompt_set.py)."""
        if self.candidate is None:
            return None
        return self.candidate.key if isinstance(self.candidate, PromptSet) else self.candidate.template


@dataclass(frozen=True)
class LLMAnswer:
    reply: ChatReply
    exchange_id: int


@dataclass
class ProposerEnv:
    """What the Study lends a proposer stream: the task, a seeded RNG, the LLM and the history."""

    task: TaskInfo
    seed: int
    stream: int | str
    rng: random.Random
    chat: Callable[[ChatRequest], LLMAnswer]
    history: Callable[[], list[Trial]]  # trials this stream may see: the pool and its own

    def derived_seed(self, *parts: object) -> int:
        """A request seed fixed by the run seed and the position, whatever the order of calls."""
        h = hashlib.sha256(repr((self.seed, self.stream, *parts)).encode()).digest()
        return int.from_bytes(h[:4], "big") & 0x7FFFFFFF

    def scored(self) -> list[Trial]:
        """Complete trials of single templates with a train score, one per template (first
        occurrence); prompt sets (ensembles, descriptions) are left out: see ``scored_sets``."""
        seen: set[str] = set()
        out = []
        for t in self.history():
            if t.state is TrialState.COMPLETE and t.template and t.template not in seen \
                    and not is_set_key(t.template):
                seen.add(t.template)
                out.append(t)
        return out

    def lookup(self, template: str) -> Trial | None:
        return next((t for t in self.scored() if t.template == template), None)

    def scored_sets(self) -> list[Trial]:
        """Complete trials of prompt sets, one per set key (first occurrence)."""
        found: dict[str, Trial] = {}
        for t in self.history():
            if t.state is TrialState.COMPLETE and is_set_key(t.template):
                found.setdefault(t.template or "", t)
        return list(found.values())


@dataclass(frozen=True)
class Asked:
    """What one request with corrective retries came to."""

    messages: list[Message]  # the conversation as it stands, corrective turns included
    raw: str  # the last reply
    fresh: tuple[Candidate, ...]  # new templates, to score
    repeats: tuple[Candidate, ...]  # already scored: answered from the store
    reason: str  # why nothing fresh came back
    exchange_id: int | None

    def proposals(self, key: str, restart: int = 0, reset: int = 0, iteration: int = 0) -> list[Proposal]:
        """Fresh templates if any, else the repeats (recorded as duplicates), else one failure."""
        chosen = self.fresh or self.repeats
        if chosen:
            return [Proposal(f"{key}/c{j}", c, self.raw, None, restart, reset, iteration, self.exchange_id)
                    for j, c in enumerate(chosen)]
        return [Proposal(f"{key}/failed", None, self.raw, self.reason, restart, reset, iteration,
                         self.exchange_id)]


class PoolSettings(BaseModel):
    """Where the starting pool comes from: the task's hand-written templates topped up from a
    generic list, a file (one template a line), or the LLM."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field("handwritten", pattern="^(handwritten|file|llm)$")
    path: str | None = None
    size: int = Field(20, ge=1, le=500)


class ProposerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pool: PoolSettings = Field(default_factory=PoolSettings)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int = Field(64, ge=8, le=4096)
    max_retries: int = Field(2, ge=0, le=10, description="corrective messages per failed reply")
    retry_repeats: bool = Field(True, description="ask again when every suggestion was tried already")
    retry_heat: float = Field(0.3, ge=0.0, le=1.0, description="temperature added per corrective retry")
    filter_degenerate: bool = Field(True, description="reject repeated words, non-words, near-copies")


class Proposer:
    """Base class: subclasses set ``name``, ``Settings`` and implement ``run_stream``."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[ProposerSettings]] = ProposerSettings
    uses_llm: ClassVar[bool] = True

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        self.settings = settings or self.Settings()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Proposer:
        return cls(cls.Settings.model_validate(options))

    def n_streams(self) -> int:
        return 1

    def needs_llm(self) -> bool:
        """Whether this run, with its settings, asks the LLM anything (the CLI then needs --llm)."""
        return self.uses_llm

    def scorer_needs(self) -> str | None:
        """What this method needs of its scorer beyond single templates (vlm.base: ENSEMBLES,
        CLASS_TEXTS), checked at setup; None: single templates only."""
        return None

    def run_pool(self, env: ProposerEnv) -> ProposalStream:
        """Score the starting pool. Hand-written and file pools need no LLM."""
        templates = self._pool_templates(env)
        yield [Proposal(f"pool/{i}", c, raw=c.template) for i, c in enumerate(templates)]

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        return
        yield  # pragma: no cover

    def shows_scores(self) -> bool:
        """Whether the LLM may be told scores; corrective messages about repeats follow it."""
        return True

    def ask_templates(self, env: ProposerEnv, messages: list[Message], key: str, n: int = 1,
                      completion_prompt: str | None = None) -> Asked:
        """Ask for ``n`` new templates, with bounded corrective retries for replies that hold
        none, only repeats of scored templates, or only degenerate ones. LLM errors end the
        attempt (the caller records a failure); setup errors and cache misses propagate."""
        from promptclimb.llm.base import CacheMiss, LLMConfigError, LLMError
        from promptclimb.proposers.filters import degeneracy

        s, common = self.settings, MetaPrompt.load("common")
        known = {t.template: t for t in env.scored() if t.template}
        raw, reason, exchange_id = "", "no reply", None
        repeats: tuple[Candidate, ...] = ()
        for attempt in range(s.max_retries + 1):
            # Each retry samples hotter: a weak model's repeats are its most likely continuation.
            temperature = min(2.0, s.temperature + s.retry_heat * attempt)
            request = ChatRequest(tuple(messages), temperature=temperature, max_tokens=s.max_tokens,
                                  seed=env.derived_seed(key, attempt), shape="template_line",
                                  completion_prompt=completion_prompt, avoid=tuple(sorted(known)))
            try:
                answer = env.chat(request)
            except (LLMConfigError, CacheMiss):
                raise
            except LLMError as err:  # endpoint failures (retryable, given up) are told apart from the model's
                reason = f"{'endpoint' if err.retryable else 'LLM'} error: {err}"
                break
            raw, exchange_id = answer.reply.text, answer.exchange_id
            parsed = parse_candidates(raw)
            seen = [c for c in parsed.candidates if c.template in known]
            fresh, bad = [], []
            for c in parsed.candidates:
                if c.template in known:
                    continue
                why = degeneracy(c.template, known) if s.filter_degenerate else None
                (bad.append((c, why)) if why else fresh.append(c))
            if fresh:
                return Asked(messages, raw, tuple(fresh[:n]), (), "", exchange_id)
            repeats = tuple(seen[:n])
            if repeats and not s.retry_repeats:
                break
            if bad:
                reason = f"degenerate: {bad[0][1]}"
                fix = common.message("corrective_degenerate", template=bad[0][0].template, reason=bad[0][1])
            elif seen:
                reason = "only templates already tried"
                quoted = ", ".join(f'"{c}"' for c in seen)
                if self.shows_scores():
                    scores = ", ".join(format_score(known[c.template].train_score) for c in seen)
                    fix = common.message("corrective_repeat", templates=quoted, scores=scores)
                else:
                    fix = common.message("corrective_repeat_plain", templates=quoted)
            else:
                reason = parsed.reason
                fix = common.message("corrective", reason=reason)
            if attempt < s.max_retries:
                messages = [*messages, Message("assistant", echo(raw)), fix]
        return Asked(messages, raw, (), repeats, reason, exchange_id)

    def _pool_templates(self, env: ProposerEnv) -> list[Candidate]:
        pool = self.settings.pool
        if pool.source == "file":
            return read_template_file(Path(pool.path or ""))[: pool.size]
        if pool.source == "llm":
            return self._llm_pool(env, pool.size)
        seen: list[Candidate] = []
        for text in (*env.task.handwritten_templates, *generic_templates()):
            try:
                c = parse_template(text)
            except CandidateRejected:
                continue
            if c not in seen:
                seen.append(c)
        return seen[: pool.size]

    def _llm_pool(self, env: ProposerEnv, size: int) -> list[Candidate]:
        """Ask the LLM for templates one at a time, showing the last ones found."""
        found: list[Candidate] = []
        prompts = MetaPrompt.load("pool")
        values = task_vars(env.task)
        for attempt in range(size * 3):
            if len(found) >= size:
                break
            shown = "\n".join(f"- {c.template}" for c in found[-10:]) or "- a photo of a {}."
            req = ChatRequest(
                (prompts.message("system", **values), prompts.message("user", **values, examples=shown)),
                temperature=self.settings.temperature, max_tokens=self.settings.max_tokens,
                seed=env.derived_seed("pool", attempt), shape="template_line",
                completion_prompt=prompts.render("completion", **values, examples=shown),
            )
            for c in parse_candidates(env.chat(req).reply.text).candidates:
                if c not in found:
                    found.append(c)
        return found[:size]


def task_vars(task: TaskInfo, n_classes: int = 8) -> dict[str, str]:
    names = list(task.class_names)
    shown = ", ".join(names[:n_classes]) + (", ..." if len(names) > n_classes else "")
    return {"task": task.name, "domain": task.description, "class_examples": shown,
            "n_classes": str(len(names))}


@cache
def generic_templates() -> tuple[str, ...]:
    text = resources.files("promptclimb.proposers").joinpath("generic_templates.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def read_template_file(path: Path) -> list[Candidate]:
    """One template a line (``promptclimb export`` writes best_templates.txt in this form)."""
    if not path.is_file():
        raise ValueError(f"template file {path} does not exist: give a file with one template a line")
    out: list[Candidate] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            c = parse_template(line)
        except CandidateRejected as err:
            raise ValueError(f"{path}:{n}: {err}; fix or remove that line") from None
        if c not in out:
            out.append(c)
    if not out:
        raise ValueError(f"template file {path} holds no template: one a line, each with one {{}}")
    return out


class MetaPrompt:
    """The words sent to the LLM, as data: ``meta_prompts/NAME.txt`` holds ``[section]`` blocks
    with ``$placeholders`` (string.Template, so the literal ``{}`` of templates needs no escape)."""

    def __init__(self, name: str, sections: dict[str, str]) -> None:
        self.name = name
        self.sections = sections

    @classmethod
    def load(cls, name: str) -> MetaPrompt:
        return _load_meta_prompt(name)

    def render(self, section: str, **values: object) -> str:
        if section not in self.sections:
            raise KeyError(f"meta-prompt {self.name}.txt has no [{section}] section")
        return string.Template(self.sections[section]).substitute(
            {k: str(v) for k, v in values.items()}).strip("\n")

    def message(self, section: str, **values: object) -> Message:
        return Message("system" if section == "system" else "user", self.render(section, **values))


@cache
def _load_meta_prompt(name: str) -> MetaPrompt:
    text = resources.files("promptclimb.proposers").joinpath(f"meta_prompts/{name}.txt").read_text()
    sections: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("[") and line.rstrip().endswith("]") and " " not in line.strip():
            current = line.strip()[1:-1]
            sections[current] = ""
        elif line.startswith("#") and current is None:
            continue
        elif current is not None:
            sections[current] += line + "\n"
    return MetaPrompt(name, {k: v.strip("\n") + ("\n" if v.endswith("\n\n") else "")
                             for k, v in sections.items()})


def format_score(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def ranked(trials: Sequence[Trial]) -> list[Trial]:
    """Best first: train score, then earlier trial (the documented tie rule)."""
    return sorted(trials, key=lambda t: (-(t.train_score or 0.0), t.number))


__all__ = [
    "Asked", "LLMAnswer", "MetaPrompt", "PoolSettings", "Proposal", "ProposalStream", "Proposer",
    "ProposerEnv", "ProposerSettings", "echo", "format_score", "ranked", "read_template_file",
]
