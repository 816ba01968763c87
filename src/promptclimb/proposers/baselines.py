"""The baselines the hill climber must beat, run through the same Study at the same budget.

No LLM: ``best_of_pool`` (score the starting pool, keep the best), ``random_pool`` (score a few
random pool templates: the expected result of not choosing) and ``fixed`` (given templates, e.g.
"a photo of a {}." or the task's hand-written ones). With an LLM but no optimization signal:
``llm_no_feedback`` (independent single-turn requests, no scores). Prior LLM prompt optimizers:
``ape``/``iterative_ape`` (paraphrase the best templates, after Zhou et al. 2022) and ``opro``
(one request per step with the scored history in ascending order, after Yang et al. 2023).

Every LLM request goes through :meth:`Proposer.ask_templates` (corrective retries, degenerate
filter), one template per request, so a weak local model with a grammar works for all of them.
Default counts give 30 LLM requests, as many as ``hill_climb``'s defaults (3 x 2 x 5), so with
the 20-template pool each method uses at most 50 scorer queries; raise a count and set
``Budget(scorer_queries=...)`` to run a method until the budget stops it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from promptclimb.candidate import Candidate, CandidateRejected, Trial, parse_template
from promptclimb.prompt_set import PromptSet
from promptclimb.proposers.base import (
    MetaPrompt,
    Proposal,
    ProposalStream,
    Proposer,
    ProposerEnv,
    ProposerSettings,
    format_score,
    ranked,
    read_template_file,
    task_vars,
)
from promptclimb.vlm.base import CLASS_TEXTS, ENSEMBLES

_NO_SCORED = "no scored template to start from: the starting pool failed"


# -- no LLM ---------------------------------------------------------------------------------
class BestOfPoolSettings(ProposerSettings):
    @model_validator(mode="after")
    def _pool_without_llm(self) -> BestOfPoolSettings:
        if self.pool.source == "llm":
            raise ValueError("this method uses no LLM: pool.source must be 'handwritten' or 'file' "
                             "(for LLM-written templates without feedback use llm_no_feedback)")
        return self


class BestOfPoolProposer(Proposer):
    """Score the starting pool only; the Study's selector keeps the best on train."""

    name = "best_of_pool"
    Settings = BestOfPoolSettings
    uses_llm = False

    def n_streams(self) -> int:
        return 0


class RandomPoolSettings(BestOfPoolSettings):
    picks: int = Field(1, ge=1, le=500, description="pool templates drawn at random and scored")


class RandomPoolProposer(BestOfPoolProposer):
    """Score ``picks`` templates drawn from the pool with the run's seeded RNG, nothing else."""

    name = "random_pool"
    Settings = RandomPoolSettings
    settings: RandomPoolSettings

    def run_pool(self, env: ProposerEnv) -> ProposalStream:
        pool = self._pool_templates(env)
        chosen = env.rng.sample(range(len(pool)), min(self.settings.picks, len(pool)))
        yield [Proposal(f"pool/{i}", pool[i], raw=pool[i].template) for i in chosen]


class FixedSettings(ProposerSettings):
    templates: list[str] = Field(default_factory=list,
                                 description="templates to score, each with exactly one {}")
    handwritten: bool = Field(False, description="also score the task's hand-written templates")
    as_ensemble: bool = Field(False, description="also score all the templates together as one ensemble "
                                                 "(mean of text embeddings: a prompt set)")
    files: list[str] = Field(default_factory=list,
                             description="files `promptclimb export` wrote: best_templates.txt (each "
                                         "template scored alone) or best_prompt_set.json (one set)")
    # What ``files`` hold, read once when the settings are checked (a bad file stops the run there).
    _from_files: list[Candidate | PromptSet] = PrivateAttr(default_factory=list)

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, value: list[str]) -> list[str]:
        for t in value:
            try:
                Candidate(t)
            except CandidateRejected as err:
                raise ValueError(str(err)) from None
        return value

    @model_validator(mode="after")
    def _something_to_score(self) -> FixedSettings:
        if not self.templates and not self.handwritten and not self.files:
            raise ValueError('fixed needs templates: "fixed:a photo of a {}.", "fixed:handwritten", '
                             '"fixed:FILE" (an exported best_templates.txt or best_prompt_set.json) '
                             "or the option templates = [...]")
        self._from_files = [c for path in self.files for c in read_fixed_file(Path(path))]
        return self

    @property
    def from_files(self) -> list[Candidate | PromptSet]:
        return list(self._from_files)


def read_fixed_file(path: Path) -> list[Candidate | PromptSet]:
    """An exported best_prompt_set.json as one set, or a template file (one a line) as its templates."""
    if path.suffix != ".json":
        return list(read_template_file(path))
    if not path.is_file():
        raise ValueError(f"prompt set file {path} does not exist: give the best_prompt_set.json "
                         "that `promptclimb export` wrote")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = PromptSet.from_json(data)
    except (ValueError, AttributeError, TypeError, CandidateRejected) as err:
        raise ValueError(f"{path} is not a prompt set ({err}): give the best_prompt_set.json that "
                         '`promptclimb export` wrote, {"templates": [...], "class_texts": {...}}') from None
    return [Candidate(found.templates[0]) if found.is_plain else found]


class FixedProposer(Proposer):
    """Score the given templates, each as its own trial (no search, no LLM); with ``as_ensemble``
    then all of them as one prompt set (CLIP's hand-written ensemble), one more trial."""

    name = "fixed"
    Settings = FixedSettings
    settings: FixedSettings
    uses_llm = False

    def n_streams(self) -> int:
        return 0

    def scorer_needs(self) -> str | None:
        sets = [c for c in self.settings.from_files if isinstance(c, PromptSet)]
        if any(s.class_texts for s in sets):
            return CLASS_TEXTS
        return ENSEMBLES if self.settings.as_ensemble or sets else None

    def run_pool(self, env: ProposerEnv) -> ProposalStream:
        read = self.settings.from_files
        found = [Candidate(t) for t in self.settings.templates] + [c for c in read if isinstance(c, Candidate)]
        if self.settings.handwritten:
            if not env.task.handwritten_templates:
                yield [Proposal("pool/handwritten", None,
                                error=f"task {env.task.name!r} has no hand-written templates")]
                return
            for text in env.task.handwritten_templates:
                try:
                    found.append(parse_template(text))
                except CandidateRejected:
                    continue
        unique = list(dict.fromkeys(found))
        proposals = [Proposal(f"pool/{i}", c, raw=c.template) for i, c in enumerate(unique)]
        if self.settings.as_ensemble and len(unique) > 1:
            together = PromptSet(tuple(c.template for c in unique))
            proposals.append(Proposal("pool/ensemble", together, raw=together.short()))
        sets = list(dict.fromkeys(c for c in read if isinstance(c, PromptSet)))
        proposals += [Proposal(f"pool/set{i}", one, raw=one.short()) for i, one in enumerate(sets)]
        yield proposals


# -- with an LLM ----------------------------------------------------------------------------
class _LLMBaseline(Proposer):
    """One stream of single-turn requests, one template each; words from ``meta_prompts/``."""

    meta_prompt = ""

    def shows_scores(self) -> bool:
        return False  # the meta-prompt shows no scores, so no corrective message may either

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        self.prompts = MetaPrompt.load(self.meta_prompt)

    def _ask(self, env: ProposerEnv, key: str, values: dict[str, Any], where: tuple[int, int],
             user: str = "user") -> list[Proposal]:
        messages = [self.prompts.message("system", **values), self.prompts.message(user, **values)]
        asked = self.ask_templates(env, messages, key, 1, self.prompts.render("completion", **values))
        reset, iteration = where
        return asked.proposals(key, int(env.stream), reset, iteration)

    @staticmethod
    def _failed(env: ProposerEnv, key: str, error: str) -> list[Proposal]:
        return [Proposal(key, None, error=error, restart=int(env.stream))]


class NoFeedbackSettings(ProposerSettings):
    proposals: int = Field(30, ge=1, le=10000, description="requests for a new template, one template each")
    max_examples: int = Field(20, ge=0, le=500,
                              description="starting templates shown, in pool order, without scores")


class NoFeedbackProposer(_LLMBaseline):
    """Ask for templates with the same task description as hill_climb, showing the starting
    templates without scores; every request is independent (no conversation, no scores)."""

    name = "llm_no_feedback"
    Settings = NoFeedbackSettings
    settings: NoFeedbackSettings
    meta_prompt = "no_feedback"

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s = self.settings
        # At the start of the stream the history is the pool; later trials are never shown.
        pool = list(dict.fromkeys(t.template for t in env.history() if t.template))
        shown = pool[: s.max_examples] or ["a photo of a {}."]
        values = {**task_vars(env.task), "examples": "\n".join(f"- {t}" for t in shown)}
        for i in range(s.proposals):
            yield self._ask(env, f"nofb/{i}", values, (0, i))


class ApeSettings(ProposerSettings):
    top_k: int = Field(5, ge=1, le=100, description="best templates so far that are paraphrased")
    paraphrases: int = Field(6, ge=1, le=1000, description="paraphrase requests per template, one each")


class ApeProposer(_LLMBaseline):
    """APE: paraphrase each of the ``top_k`` best pool templates ``paraphrases`` times; the
    Study's selector keeps the best. The LLM sees no scores, only the template to reword and
    the rewordings of it already written."""

    name = "ape"
    Settings = ApeSettings
    settings: ApeSettings
    meta_prompt = "ape"

    def rounds(self) -> int:
        return 1

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s = self.settings
        for rnd in range(self.rounds()):
            sources = ranked(env.scored())[: s.top_k]
            if not sources:
                yield self._failed(env, f"ape/{rnd}/start", _NO_SCORED)
                return
            for i, source in enumerate(sources):
                template = source.template or ""
                written: list[str] = []
                for j in range(s.paraphrases):
                    values = {**task_vars(env.task), **self._shown(template, written)}
                    trials: list[Trial] = yield self._ask(env, f"ape/{rnd}/{i}/p{j}", values,
                                                          (rnd, i * s.paraphrases + j))
                    written.extend(t.template for t in trials
                                   if t.template and t.template not in (template, *written))

    def _shown(self, template: str, written: list[str]) -> dict[str, str]:
        avoid = "\n".join(f"- {t}" for t in written)
        block = "\n" + self.prompts.render("avoid_block", avoid=avoid) + "\n" if written else ""
        return {"template": template, "avoid_block": block,
                "lines": "\n".join(f"- {t}" for t in (template, *written))}


class IterativeApeSettings(ApeSettings):
    rounds: int = Field(3, ge=1, le=100, description="rounds, each paraphrasing the current best")
    paraphrases: int = Field(2, ge=1, le=1000, description="paraphrase requests per template per round")


class IterativeApeProposer(ApeProposer):
    """Iterative APE: ``rounds`` of paraphrasing, each starting from the best templates so far
    (the pool and every earlier round)."""

    name = "iterative_ape"
    Settings = IterativeApeSettings
    settings: IterativeApeSettings

    def rounds(self) -> int:
        return self.settings.rounds


class OproSettings(ProposerSettings):
    steps: int = Field(30, ge=1, le=10000, description="requests, one template each")
    max_shown: int = Field(20, ge=1, le=500, description="best scored templates shown, worst to best")


class OproProposer(_LLMBaseline):
    """OPRO: each step is one fresh request showing the best ``max_shown`` templates scored so
    far with their scores, in ascending order (best last), asking for a new, better one."""

    name = "opro"
    Settings = OproSettings
    settings: OproSettings
    meta_prompt = "opro"

    def shows_scores(self) -> bool:
        return True

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s = self.settings
        for step in range(s.steps):
            shown = ranked(env.scored())[: s.max_shown][::-1]
            if not shown:
                yield self._failed(env, f"opro/{step}/start", _NO_SCORED)
                return
            history = "\n".join(f"- {t.template} ({format_score(t.train_score)})" for t in shown)
            yield self._ask(env, f"opro/{step}", {**task_vars(env.task), "history": history}, (0, step))


# -- factories (METHODS entries) -------------------------------------------------------------
def _factory(cls: type[Proposer]) -> Any:
    def build(arg: str, *, options: dict[str, Any]) -> Proposer:
        if arg:
            raise ValueError(f"method {cls.name!r} takes no argument after ':' (got {arg!r})")
        return cls.from_options(options)

    return build


build_best_of_pool = _factory(BestOfPoolProposer)
build_random_pool = _factory(RandomPoolProposer)
build_llm_no_feedback = _factory(NoFeedbackProposer)
build_ape = _factory(ApeProposer)
build_iterative_ape = _factory(IterativeApeProposer)
build_opro = _factory(OproProposer)


def _is_file_arg(arg: str) -> bool:
    """A template has its {}; a file is named by its export suffix or exists."""
    return bool(arg) and "{" not in arg and (Path(arg).suffix in (".txt", ".json") or Path(arg).is_file())


def build_fixed(arg: str, *, options: dict[str, Any]) -> FixedProposer:
    """``fixed:a photo of a {}.``, several joined by ``||``, ``fixed:handwritten``, or ``fixed:FILE``
    (an exported best_templates.txt or best_prompt_set.json); the options ``templates`` and
    ``files`` add more."""
    opts = dict(options)
    if arg.strip() == "handwritten":
        opts["handwritten"] = True
    elif _is_file_arg(arg.strip()):
        opts["files"] = [arg.strip(), *opts.get("files", [])]
    elif arg.strip():
        opts["templates"] = [*[t.strip() for t in arg.split("||") if t.strip()], *opts.get("templates", [])]
    return FixedProposer(FixedSettings.model_validate(opts))


__all__ = [
    "ApeProposer", "BestOfPoolProposer", "FixedProposer", "IterativeApeProposer", "NoFeedbackProposer",
    "OproProposer", "RandomPoolProposer",
]
