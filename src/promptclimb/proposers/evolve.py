"""``evolve``: a ProAPO-style evolutionary template search (after Qu et al., CVPR 2025,
"Progressively Automatic Prompt Optimization for Visual Classification"), our implementation.

ProAPO's template stage evolves *sets* of templates drawn from a library the LLM writes once. Our
candidate is one template, so the genome here is one template's phrases: a head phrase holding
``{}`` and up to ``max_tails`` descriptive phrases after commas ("a photo of a {}, a type of pet,
in the wild."). The library of heads and tails comes from the starting pool plus ONE LLM request
(``library_samples`` sampled replies). Each generation takes the ``top_k`` genomes by fitness and
makes, per parent, ``n_add`` / ``n_delete`` / ``n_replace`` children by the edit operators, plus
``n_mutation`` random genomes from the library and ``n_crossover`` children of two top parents;
the generation is shuffled, so a run cut short by the scorer budget has sampled every operator.
Fitness (ProAPO's entropy-constrained score) = ``acc_weight`` x accuracy - ``ce_weight`` x
cross-entropy of the scorer's softmax, where the scorer reports ``cross_entropy`` (zero-shot
scorers, fake); accuracy alone otherwise. Phrase sampling is uniform or weighted by the fitness
gain of the genomes a phrase appears in (ProAPO's linear / exp weighting). The Study's selector
still makes the final pick, as for every method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, Literal

from pydantic import Field

from promptclimb.candidate import CandidateRejected, Trial, parse_candidates, parse_template
from promptclimb.llm.base import CacheMiss, ChatRequest, LLMConfigError, LLMError
from promptclimb.proposers.base import (
    MetaPrompt,
    Proposal,
    ProposalStream,
    Proposer,
    ProposerEnv,
    ProposerSettings,
    task_vars,
)


class EvolveSettings(ProposerSettings):
    library_samples: int = Field(16, ge=1, le=256, description="replies sampled in the one library request")
    library_lines: int = Field(8, ge=1, le=64, description="templates asked for in each library reply")
    library_max_tokens: int = Field(256, ge=16, le=4096)
    generations: int = Field(6, ge=1, le=100, description="ProAPO epochs (its 1-shot configs: 6)")
    top_k: int = Field(4, ge=1, le=100, description="parents per generation (ProAPO num_top)")
    n_add: int = Field(8, ge=0, le=1000, description="add-a-phrase children per parent")
    n_delete: int = Field(8, ge=0, le=1000, description="delete-a-phrase children per parent")
    n_replace: int = Field(8, ge=0, le=1000, description="replace-a-phrase children per parent")
    n_mutation: int = Field(8, ge=0, le=1000, description="random library genomes per generation")
    n_crossover: int = Field(16, ge=0, le=1000, description="children of two top parents per generation")
    max_tails: int = Field(3, ge=0, le=10, description="descriptive phrases a template may carry")
    attempts: int = Field(64, ge=0, le=10000, description="extra draws per operator to find new children")
    acc_weight: float = Field(10.0, ge=0.0, description="fitness weight of train accuracy (0..1)")
    ce_weight: float = Field(10.0, ge=0.0, description="fitness weight of the cross-entropy (nats)")
    sampling: Literal["uniform", "linear", "exp"] = "uniform"
    epsilon: float = Field(1.0, gt=0.0, description="linear weighting: weight = gain + epsilon")


@dataclass(frozen=True)
class Genome:
    head: str  # the phrase holding {}
    tails: tuple[str, ...] = ()

    def render(self) -> str:
        return ", ".join((self.head, *self.tails)) + "."


def split_phrases(template: str) -> Genome | None:
    """A template's head (up to the phrase holding {}) and its descriptive tail phrases."""
    parts = [p.strip() for p in template.strip().rstrip(".!").split(",") if p.strip()]
    at = next((i for i, p in enumerate(parts) if "{}" in p), None)
    if at is None:
        return None
    tails = tuple(p for p in parts[at + 1:] if "{" not in p and "}" not in p)
    return Genome(", ".join(parts[: at + 1]), tails)


@dataclass
class Library:
    heads: list[str]
    tails: list[str]

    def add(self, genome: Genome) -> None:
        if genome.head not in self.heads:
            self.heads.append(genome.head)
        self.tails.extend(t for t in genome.tails if t not in self.tails)


class EvolveProposer(Proposer):
    name = "evolve"
    Settings = EvolveSettings
    settings: EvolveSettings

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        self.prompts = MetaPrompt.load("evolve")

    # -- fitness ------------------------------------------------------------------------------
    def fitness(self, trial: Trial) -> float:
        s = self.settings
        value = s.acc_weight * (trial.train_score or 0.0)
        ce = trial.metrics.get("cross_entropy")
        return value - s.ce_weight * float(ce) if isinstance(ce, int | float) else value

    # -- the phrase library (one LLM request) ----------------------------------------------------
    def _library(self, env: ProposerEnv, pool: list[Trial]) -> tuple[Library, list[Proposal]]:
        lib = Library([], [])
        for t in pool:
            g = split_phrases(t.template or "")
            if g is not None:
                lib.add(g)
        s = self.settings
        shown = "\n".join(f"- {t.template}" for t in pool[:10]) or "- a photo of a {}."
        values = {**task_vars(env.task), "examples": shown, "n_lines": s.library_lines}
        request = ChatRequest(
            (self.prompts.message("system", **values), self.prompts.message("user", **values)),
            temperature=s.temperature, max_tokens=s.library_max_tokens, n=s.library_samples,
            seed=env.derived_seed("library"), shape="template_line",
            completion_prompt=self.prompts.render("completion", **values))
        try:
            answer = env.chat(request)
        except (LLMConfigError, CacheMiss):
            raise
        except LLMError as err:
            return lib, [Proposal("evo/library/failed", None, error=f"library request: LLM error: {err}")]
        found = 0
        for text in answer.reply.texts:
            for c in parse_candidates(text).candidates:
                g = split_phrases(c.template)
                if g is not None:
                    lib.add(g)
                    found += 1
        if not found:
            return lib, [Proposal("evo/library/failed", None, raw=answer.reply.text[:2000],
                                  error="library request: no reply held a template with one {}",
                                  exchange_id=answer.exchange_id)]
        return lib, []

    # -- sampling --------------------------------------------------------------------------------
    def _weights(self, phrases: Sequence[str], scored: list[Trial], baseline: float,
                 reverse: bool = False) -> list[float] | None:
        mode = self.settings.sampling
        if mode == "uniform":
            return None
        gains: dict[str, list[float]] = {p: [] for p in phrases}
        for t in scored:
            g = split_phrases(t.template or "")
            if g is None:
                continue
            for p in (g.head, *g.tails):
                if p in gains:
                    gains[p].append(self.fitness(t) - baseline)
        means = [sum(v) / len(v) if v else 0.0 for v in (gains[p] for p in phrases)]
        w = [m + self.settings.epsilon if mode == "linear" else math.exp(min(m, 50.0)) for m in means]
        w = [max(x, 1e-3) for x in w]
        return [1.0 / x for x in w] if reverse else w

    def _pick(self, rng: Random, phrases: Sequence[str], weights: list[float] | None) -> str:
        return rng.choices(list(phrases), weights=weights)[0] if weights else rng.choice(list(phrases))

    # -- operators (by name, in OPERATORS below) -------------------------------------------------
    def _add(self, a: Genome, b: Genome, ctx: _Ctx) -> Genome | None:
        free = [t for t in ctx.lib.tails if t not in a.tails]
        if not free or len(a.tails) >= self.settings.max_tails:
            return None
        tails = list(a.tails)
        tails.insert(ctx.rng.randint(0, len(tails)), ctx.pick(free))
        return Genome(a.head, tuple(tails))

    def _delete(self, a: Genome, b: Genome, ctx: _Ctx) -> Genome | None:
        if not a.tails:
            return None
        gone = ctx.pick(a.tails, reverse=True)
        return Genome(a.head, tuple(t for t in a.tails if t != gone))

    def _replace(self, a: Genome, b: Genome, ctx: _Ctx) -> Genome | None:
        slot = ctx.rng.randrange(len(a.tails) + 1)  # 0: the head, i: tail i - 1
        if slot == 0:
            heads = [h for h in ctx.lib.heads if h != a.head]
            return Genome(ctx.pick(heads), a.tails) if heads else None
        free = [t for t in ctx.lib.tails if t not in a.tails]
        if not free:
            return None
        tails = list(a.tails)
        tails[slot - 1] = ctx.pick(free)
        return Genome(a.head, tuple(tails))

    def _mutation(self, a: Genome, b: Genome, ctx: _Ctx) -> Genome | None:
        k = ctx.rng.randint(0, min(self.settings.max_tails, len(ctx.lib.tails)))
        return Genome(ctx.pick(ctx.lib.heads), tuple(ctx.rng.sample(ctx.lib.tails, k)))

    def _crossover(self, a: Genome, b: Genome, ctx: _Ctx) -> Genome | None:
        """The head of one parent, tails drawn from the union of both parents' tails."""
        union = list(dict.fromkeys((*a.tails, *b.tails)))
        lo, hi = sorted((len(a.tails), len(b.tails)))
        k = min(ctx.rng.randint(lo, hi), len(union), self.settings.max_tails)
        return Genome(ctx.rng.choice((a.head, b.head)), tuple(ctx.rng.sample(union, k)))

    def _generation(self, gen: int, env: ProposerEnv, lib: Library, baseline: float) -> list[Proposal]:
        s, rng = self.settings, env.rng
        scored = env.scored()
        ranked_fit = sorted(scored, key=lambda t: (-self.fitness(t), t.number))
        parents = [g for g in (split_phrases(t.template or "") for t in ranked_fit) if g is not None][: s.top_k]
        if not parents or not lib.heads:
            return []
        if len(parents) < s.top_k:
            parents = rng.choices(parents, k=s.top_k)
        jobs: list[tuple[str, int]] = [(op, i) for i in range(len(parents))
                                       for op, n in (("add", s.n_add), ("delete", s.n_delete),
                                                     ("replace", s.n_replace)) for _ in range(n)]
        jobs += [("mutation", 0)] * s.n_mutation + [("crossover", 0)] * s.n_crossover
        rng.shuffle(jobs)
        known = {t.template for t in scored}
        ctx = _Ctx(self, lib, rng, scored, baseline)
        out: list[Proposal] = []
        for j, (op, i) in enumerate(jobs):
            for _ in range(s.attempts + 1):
                a, b = (parents[i], parents[i]) if op != "crossover" else _two(rng, parents)
                child = OPERATORS[op](self, a, b, ctx)
                if child is None:
                    break
                try:
                    cand = parse_template(child.render())
                except CandidateRejected:
                    continue
                if cand.template not in known:
                    known.add(cand.template)
                    out.append(Proposal(f"evo/g{gen}/j{j}", cand, raw=f"{op}: {cand.template}",
                                        restart=0, reset=gen, iteration=j))
                    break
        return out

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        pool = env.scored()
        if not pool:
            yield [Proposal("evo/start", None, error="no scored template to start from: the starting pool failed")]
            return
        lib, failed = self._library(env, pool)
        if failed:
            yield failed
        baseline = self.fitness(pool[0])
        for gen in range(self.settings.generations):
            batch = self._generation(gen, env, lib, baseline)
            if not batch:
                return
            yield batch


@dataclass
class _Ctx:
    """What the operators draw from: the library, the stream's RNG, and the phrase weights."""

    proposer: EvolveProposer
    lib: Library
    rng: Random
    scored: list[Trial]
    baseline: float

    def pick(self, phrases: Sequence[str], reverse: bool = False) -> str:
        weights = self.proposer._weights(phrases, self.scored, self.baseline, reverse)
        return self.proposer._pick(self.rng, phrases, weights)


def _two(rng: Random, parents: list[Genome]) -> tuple[Genome, Genome]:
    if len(parents) < 2:
        return parents[0], parents[0]
    a, b = rng.sample(parents, 2)
    return a, b


Operator = Callable[[EvolveProposer, Genome, Genome, _Ctx], "Genome | None"]
OPERATORS: dict[str, Operator] = {
    "add": EvolveProposer._add, "delete": EvolveProposer._delete, "replace": EvolveProposer._replace,
    "mutation": EvolveProposer._mutation, "crossover": EvolveProposer._crossover,
}


def build(arg: str, *, options: dict[str, Any]) -> EvolveProposer:
    if arg:
        raise ValueError(f"method 'evolve' takes no argument after ':' (got {arg!r})")
    return EvolveProposer(EvolveSettings.model_validate(options))


__all__ = ["EvolveProposer", "EvolveSettings", "Genome", "split_phrases"]
