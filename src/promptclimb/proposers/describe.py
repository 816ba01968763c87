"""Methods ``describe`` and ``hill_climb+describe``: per-class descriptions written by the LLM.

``describe`` starts from a template (``start``, or the best single template scored so far) and
asks the LLM for ``descriptions`` short descriptions of every class (CuPL-style; requests of
``classes_per_request`` classes; ``meta_prompts/describe.txt``). The candidate is a PromptSet: the
template plus the descriptions beside it, a class's embedding the mean of its template text and
its descriptions (prompt_set.py; ``combine`` picks the descriptions alone or template x
descriptions instead); classes the reply left out keep the template alone. With ``class_select``,
each class's descriptions are then tried on their own, worst class first, and kept only if the
train score rises: a whole set can lose while some of its classes win. Then, for
``rounds`` rounds, it takes the ``worst_classes`` classes with the most errors under the current
set, tells the LLM how each fares ("lion: 2 of 5 right, mostly taken for tiger", class_feedback.py)
with their current descriptions, and asks for new ones for those classes only; the rewritten set is
kept when it scores better on train (accuracy, then mean margin), as in hill climbing. Each set is
one trial, one scorer query. A reply with no usable line (no class, the wrong class) is a failed
trial; the run goes on. It needs a scorer that embeds per-class texts (checked at setup).

``describe_select`` is ``describe`` with the options of SELECT_RECIPE (below), the recipe a
pre-registered grid found better than hill climbing.

``hill_climb+describe`` runs the paper's hill climbing first (its restarts one after another in
one stream, so each sees the trials before it; its share of the budget is its own counts:
restarts x resets x iterations x per_iteration queries), then ``describe`` from the best template.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from random import Random
from typing import Any

from pydantic import BaseModel, Field

from promptclimb.candidate import Trial, TrialState
from promptclimb.llm.base import ChatRequest, Message
from promptclimb.prompt_set import CombineMode, PromptSet, parse_set_key
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
from promptclimb.proposers.class_feedback import class_feedback, class_outcomes, trial_outcomes
from promptclimb.proposers.descriptions import parse_descriptions
from promptclimb.proposers.hill_climb import HillClimbProposer, HillClimbSettings
from promptclimb.vlm.base import CLASS_TEXTS

_Kept = tuple[Trial | None, PromptSet]  # the set kept so far and its trial
_Asked = tuple[dict[str, list[str]], str, str, int | None]  # one reply: texts, raw, why unusable, exchange


class DescribeOptions(BaseModel):
    start: str | None = Field(None, description="template to describe from (default: the best scored)")
    descriptions: int = Field(3, ge=1, le=20, description="descriptions asked per class")
    # 3 classes x 3 descriptions (about 200 tokens) fit one reply of the local backend (at most 256
    # tokens); with 10 a request, Qwen 1.5B wrote one line a class, then invented classes, then ran out.
    classes_per_request: int = Field(3, ge=1, le=200, description="classes per description request")
    rounds: int = Field(5, ge=0, le=200, description="rewrites of the worst classes' descriptions")
    worst_classes: int = Field(3, ge=1, le=100, description="classes rewritten per round")
    description_tokens: int = Field(400, ge=16, le=4096, description="max_tokens of a description reply")
    class_select: bool = Field(
        False, description="after the first set, try each class's descriptions on their own, worst class "
                           "first, and keep them only if the train score rises (one query a class, no LLM call)")
    class_gain: int = Field(
        0, ge=0, le=1000, description="with class_select: train images a toggle must gain to be kept "
                                      "(0: any gain in accuracy, then mean margin, as the rounds)")
    combine: CombineMode = Field(
        "beside", description="a class's texts: the template and its descriptions (beside), the "
                              "descriptions alone, or the template followed by each (product); prompt_set.py")


class DescribeSettings(ProposerSettings, DescribeOptions):
    pass


class DescribeProposer(Proposer):
    name = "describe"
    Settings = DescribeSettings
    settings: DescribeSettings

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        self.prompts = MetaPrompt.load("describe")

    def scorer_needs(self) -> str | None:
        return CLASS_TEXTS

    # -- asking ---------------------------------------------------------------------------
    def _ask(self, env: ProposerEnv, key: str, user: str, wanted: list[str]) -> _Asked:
        """(descriptions per class, raw reply, why nothing usable came back, exchange id)."""
        from promptclimb.llm.base import CacheMiss, LLMConfigError, LLMError

        request = ChatRequest((self.prompts.message("system"), Message("user", user)),
                              temperature=self.settings.temperature, max_tokens=self.settings.description_tokens,
                              seed=env.derived_seed(key), shape="class_lines")
        try:
            answer = env.chat(request)
        except (LLMConfigError, CacheMiss):
            raise
        except LLMError as err:
            return {}, "", f"{'endpoint' if err.retryable else 'LLM'} error: {err}", None
        parsed = parse_descriptions(answer.reply.text, env.task.class_names, wanted, self.settings.descriptions)
        return parsed.texts, answer.reply.text, parsed.reason, answer.exchange_id

    @staticmethod
    def _offered(asked: list[_Asked]) -> dict[str, list[str]]:
        """The descriptions per class of one or more replies (a later reply wins for its classes)."""
        return {name: found for a in asked for name, found in a[0].items()}

    def _proposal(self, key: str, base: PromptSet, asked: list[_Asked], env: ProposerEnv, iteration: int) -> Proposal:
        texts = self._offered(asked)
        raw = "\n".join(a[1] for a in asked)[:2000]
        exchange = next((a[3] for a in reversed(asked) if a[3] is not None), None)
        restart = _restart(env)
        if not texts:
            reason = "no usable description: " + "; ".join(dict.fromkeys(a[2] for a in asked))[:280]
            return Proposal(key, None, raw, reason, restart, 0, iteration, exchange)
        return Proposal(key, base.with_texts(texts), raw, None, restart, 0, iteration, exchange)

    # -- the loop -------------------------------------------------------------------------
    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        s, names = self.settings, list(env.task.class_names)
        start = s.start or next((t.template for t in ranked(env.scored()) if t.template), None)
        if start is None:
            yield [Proposal("desc/start", None, error="no scored template to start from: the starting pool failed")]
            return
        values = {**task_vars(env.task), "template": start, "n": s.descriptions}
        asked = []
        for c in range(0, len(names), s.classes_per_request):
            chunk = names[c:c + s.classes_per_request]
            user = self.prompts.render("initial", **values, classes="\n".join(f"- {n}" for n in chunk),
                                       example=self.prompts.render("example", name=chunk[0]))
            asked.append(self._ask(env, f"desc/init/{c}", user, chunk))
        current_set = PromptSet((start,), combine=s.combine)
        current = env.lookup(start)
        trials: list[Trial] = yield [self._proposal("desc/init", current_set, asked, env, 0)]
        current, current_set = self._better(trials, current, current_set)
        if s.class_select:
            current, current_set = yield from self._select_classes(env, self._offered(asked), current, current_set)
        for r in range(s.rounds):
            outcomes = trial_outcomes(current.metrics) if current is not None else None
            if outcomes is None:
                return  # the scorer reports no per-image classes: nothing to say which to rewrite
            worst = [c.name for c in class_outcomes(*outcomes, names) if c.right < c.total][: s.worst_classes]
            if not worst:
                return  # every class right
            current_lines = "\n".join(f"{n}: {d}" if not d.casefold().startswith(n.casefold()) else d
                                      for n in worst for d in current_set.class_texts.get(n, ("(none yet)",)))
            user = self.prompts.render("rewrite", **values, feedback=class_feedback(*outcomes, names, s.worst_classes),
                                       current=current_lines, classes=", ".join(worst))
            asked = [self._ask(env, f"desc/r{r}", user, worst)]
            trials = yield [self._proposal(f"desc/r{r}", current_set, asked, env, r + 1)]
            current, current_set = self._better(trials, current, current_set)

    def _select_classes(self, env: ProposerEnv, offered: dict[str, list[str]], current: Trial | None,
                        current_set: PromptSet) -> Generator[list[Proposal], list[Trial], _Kept]:
        """Greedy per-class choice: one class at a time, the set with that class's first
        descriptions switched on (or off, if the current set has them) is kept if it scores better.
        A whole set can lose on train while some of its classes win; this finds those classes from
        the same reply, at one scorer query a class."""
        names, restart = list(env.task.class_names), _restart(env)
        outcomes = trial_outcomes(current.metrics) if current is not None else None
        order = [c.name for c in class_outcomes(*outcomes, names)] if outcomes is not None else names
        for i, name in enumerate(n for n in dict.fromkeys([*order, *names]) if n in offered):
            toggled = (current_set.without_texts([name]) if name in current_set.class_texts
                       else current_set.with_texts({name: offered[name]}))
            trials = yield [Proposal(f"desc/class{i}", toggled, restart=restart)]
            current, current_set = self._better(trials, current, current_set, self.settings.class_gain)
        return current, current_set

    @staticmethod
    def _better(trials: list[Trial], current: Trial | None, current_set: PromptSet, gain: int = 0) -> _Kept:
        """The new set if it scored better than the current one: accuracy, then mean margin; with
        ``gain`` > 0, at least that many more train images right (margin not used)."""
        def rank(t: Trial) -> tuple[float, float]:
            return (t.train_score or 0.0, float(t.metrics.get("mean_margin", -1e18)))

        new = next((t for t in trials if t.state is TrialState.COMPLETE and t.train_score is not None), None)
        found = parse_set_key(new.template) if new is not None else None
        if new is None or found is None:
            return current, current_set
        if current is None:
            return new, found
        images = len(new.metrics.get("labels") or ())
        if gain > 0 and images:  # without per-image labels, gain cannot be counted: the default rule
            better = round(((new.train_score or 0.0) - (current.train_score or 0.0)) * images) >= gain
        else:
            better = rank(new) > rank(current)
        return (new, found) if better else (current, current_set)


def _restart(env: ProposerEnv) -> int:
    """The stream a trial is recorded under: hill_climb+describe's describe stage runs after its restarts."""
    return env.stream if isinstance(env.stream, int) else 0


class HillClimbDescribeSettings(HillClimbSettings, DescribeOptions):
    pass


class HillClimbDescribeProposer(Proposer):
    """hill_climb, then describe from its best template (module docstring)."""

    name = "hill_climb+describe"
    Settings = HillClimbDescribeSettings
    settings: HillClimbDescribeSettings

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        dump = self.settings.model_dump()
        self.climb = HillClimbProposer(HillClimbSettings.model_validate(
            {k: v for k, v in dump.items() if k in HillClimbSettings.model_fields}))
        self.describe = DescribeProposer(DescribeSettings.model_validate(
            {k: v for k, v in dump.items() if k in DescribeSettings.model_fields}))

    def scorer_needs(self) -> str | None:
        return CLASS_TEXTS

    def shows_scores(self) -> bool:
        return self.climb.shows_scores()

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        restarts = self.settings.restarts
        for r in range(restarts):
            yield from self.climb.run_stream(replace(env, stream=r, rng=Random(f"{env.seed}/{r}")))
        yield from self.describe.run_stream(replace(env, stream=restarts, rng=Random(f"{env.seed}/{restarts}")))


def build(arg: str, *, options: dict[str, Any]) -> DescribeProposer:
    if arg:
        raise ValueError(f"method 'describe' takes no argument after ':' (got {arg!r})")
    return DescribeProposer(DescribeSettings.model_validate(options))


# The recipe the sixth pre-registered grid tested (README, "Beyond the paper"): the first set of
# descriptions alone, then each class's kept only if 2 more train images come out right; no rewrites.
SELECT_RECIPE: dict[str, Any] = {"combine": "descriptions", "class_select": True, "rounds": 0, "class_gain": 2}


def build_select(arg: str, *, options: dict[str, Any]) -> DescribeProposer:
    """``describe_select``: ``describe`` with SELECT_RECIPE; options given still override it."""
    return build(arg, options={**SELECT_RECIPE, **options})


def build_after_hill_climb(arg: str, *, options: dict[str, Any]) -> HillClimbDescribeProposer:
    if arg:
        raise ValueError(f"method 'hill_climb+describe' takes no argument after ':' (got {arg!r})")
    return HillClimbDescribeProposer(HillClimbDescribeSettings.model_validate(options))
