"""``gepa``: GEPA (Agrawal et al. 2025; the ``gepa`` package, extra ``[gepa]``) run as a method.

GEPA owns its loop (``gepa.optimize``): it picks a parent from its Pareto front, evaluates it on a
minibatch of train images, asks for a reflective mutation, evaluates the child on the same
minibatch and, if it is better, on the whole validation set (here: the train images again). The
adapter runs that loop in a worker thread and bridges each ``evaluate`` call to the Study: the
call becomes one Proposal, the Study scores it (or answers it from the store) and records it as a
Trial, and the trial's per-image outcomes go back to GEPA as its per-instance scores. So every
metric call GEPA makes is a trial in our store, with our keys, and nothing runs concurrently:
the two threads hand control back and forth.

Budget: one trial per GEPA ``evaluate`` call. A template not scored before costs one scorer
query (the whole train split, as for every method), whatever GEPA's batch; one already scored is
a duplicate trial and costs nothing. GEPA is stopped by our meter: after ``max_queries`` scorer
queries (or ``max_evaluations`` evaluate calls), and by the Study's budget. Each evaluation tells
GEPA ``num_metric_calls`` = the queries it cost (1 or 0).

Reflection is our ChatLLM through ``Proposer.ask_templates`` (cache, replay, cost, corrective
retries, the llama.cpp template grammar), with the words in ``meta_prompts/gepa.txt`` and the
reflective dataset from :mod:`class_feedback`: per image "an image of a lion: wrong, taken for
tiger", plus the class-level summary over the whole train split. A reply with no ``{}`` or
several is handed to GEPA as it is and recorded as a failed trial (score 0 on every image).
An exception inside GEPA's own code ends the stream with one failed trial naming it.

Resume: GEPA keeps no state of ours; a resumed run replays GEPA from the start with the same
seed, and every evaluation and LLM reply it reaches is answered from the store.
"""

from __future__ import annotations

import importlib.util
import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from pydantic import Field

from promptclimb.candidate import CandidateRejected, Trial, TrialState, parse_template
from promptclimb.llm.base import BudgetExhausted, CacheMiss, LLMConfigError
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
from promptclimb.proposers.class_feedback import class_feedback, image_feedback, trial_outcomes
from promptclimb.selection import unpack_items
from promptclimb.store import StoreError

COMPONENT = "template"
INSTALL_HINT = "method 'gepa' needs the gepa package: pip install 'promptclimb[gepa]' (gepa==0.1.4)"


class GepaMissing(ValueError):
    """gepa is not installed; the message names the extra to install."""


class GepaSettings(ProposerSettings):
    max_queries: int = Field(30, ge=1, le=100000,
                             description="GEPA's budget in scorer queries (new templates it has scored)")
    max_evaluations: int = Field(300, ge=1, le=1000000, description="GEPA evaluate calls at most (trials)")
    reflection_minibatch_size: int = Field(3, ge=1, le=10000, description="GEPA's minibatch (its default: 3)")
    candidate_selection: Literal["pareto", "current_best", "epsilon_greedy", "top_k_pareto"] = "pareto"
    use_merge: bool = Field(False, description="GEPA's merge proposer (its default: off)")
    skip_perfect_score: bool = True
    class_summary: bool = Field(True, description="add the class-level feedback over all train images")
    worst_classes: int = Field(3, ge=1, le=100, description="classes named in the class-level feedback")
    max_records: int = Field(8, ge=1, le=1000, description="minibatch images shown to the reflection LLM")


class _Stop(BaseException):
    """Unwinds GEPA's thread when the Study stops the stream or an error of ours must surface
    (a BaseException, so GEPA's ``except Exception`` lets it through)."""


def _unpack(per_item: Any) -> list[float]:
    items = unpack_items(per_item)
    return [] if items is None else items.tolist()


class _Bridge:
    """Hands GEPA's evaluate calls to the Study's generator and the trials back, one at a time."""

    def __init__(self) -> None:
        self.to_study: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.to_gepa: queue.Queue[Trial | None] = queue.Queue()
        self.fatal: BaseException | None = None

    def ask(self, proposal: Proposal) -> Trial:
        self.to_study.put(("eval", proposal))
        trial = self.to_gepa.get()
        if trial is None:
            raise _Stop()
        return trial

    def guard(self, err: BaseException) -> None:
        """Errors that must stop the run (budgets, setup, store) are re-raised in the Study."""
        if isinstance(err, BudgetExhausted | LLMConfigError | CacheMiss | StoreError):
            self.fatal = err
            raise _Stop() from err


class StudyAdapter:
    """GEPA's adapter protocol (evaluate, make_reflective_dataset, propose_new_texts) over a Study
    stream. ``calls`` lists every evaluate call as GEPA made it: (template, batch, scores)."""

    def __init__(self, proposer: GepaProposer, env: ProposerEnv, bridge: _Bridge, n_items: int) -> None:
        self.proposer, self.env, self.bridge, self.n_items = proposer, env, bridge, n_items
        self.prompts = MetaPrompt.load("gepa")
        self.calls: list[tuple[str, list[int], list[float]]] = []
        self.queries = 0
        self.rejected: dict[str, str] = {}  # reply text -> why it holds no template
        self._proposals = 0

    # -- evaluate: one trial per call ---------------------------------------------------------
    def evaluate(self, batch: list[int], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        text = candidate.get(COMPONENT, "")
        n = len(self.calls)
        try:
            if text in self.rejected:  # the reflection reply held no usable template
                raise CandidateRejected(self.rejected[text])
            cand = parse_template(text)
            if cand.template != text:  # GEPA must see the text it proposed scored, not a cleaned one
                raise CandidateRejected(f"not a clean template ({text[:80]!r})")
            proposal = Proposal(f"gepa/e{n}", cand, raw=text, iteration=n)
        except CandidateRejected as err:
            proposal = Proposal(f"gepa/e{n}", None, raw=text, error=str(err), iteration=n)
        trial = self.bridge.ask(proposal)
        outcome = self._outcome(trial)
        scores = [outcome[i] if i < len(outcome) else 0.0 for i in batch]
        self.calls.append((text, list(batch), scores))
        cost = int(trial.metrics.get("queries", 0))  # our meter: 1 (2 with val) if scored now, else 0
        self.queries += cost
        traces = [{"index": i, "trial": trial.number, "correct": s} for i, s in zip(batch, scores, strict=True)]
        return EvaluationBatch(outputs=[s for s in scores], scores=scores,
                               trajectories=traces if capture_traces else None, num_metric_calls=cost)

    def _source(self, trial: Trial) -> Trial:
        """The trial holding the per-image outcomes: itself, or the first scoring of its template."""
        if trial.state is TrialState.DUPLICATE and trial.template:
            return self.env.lookup(trial.template) or trial
        return trial

    def _outcome(self, trial: Trial) -> list[float]:
        if trial.state is TrialState.FAILED:
            return [0.0] * self.n_items
        return _unpack(self._source(trial).metrics.get("per_item"))

    # -- reflection ------------------------------------------------------------------------------
    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> dict[str, list[dict[str, Any]]]:
        s, names = self.proposer.settings, self.env.task.class_names
        traces = list(eval_batch.trajectories or [])[: s.max_records]
        trial = self._trial(traces)
        pairs = trial_outcomes(trial.metrics) if trial is not None else None
        records: list[dict[str, Any]] = []
        for tr in traces:
            i, ok = int(tr["index"]), bool(tr["correct"])
            label, pred = (pairs[0][i], pairs[1][i]) if pairs and i < len(pairs[0]) else (None, None)
            records.append({"Inputs": f"training image {i}", "Generated Outputs": "right" if ok else "wrong",
                            "Feedback": image_feedback(label, pred, names, ok, i)})
        if s.class_summary and pairs is not None and trial is not None:
            words = MetaPrompt.load("class_feedback")
            total = len(pairs[0])
            right = sum(a == b for a, b in zip(*pairs, strict=True))
            records.append({"Inputs": words.render("summary_input", total=total),
                            "Generated Outputs": words.render("summary_output", right=right, total=total),
                            "Feedback": class_feedback(pairs[0], pairs[1], names, s.worst_classes)})
        return {c: records for c in components_to_update}

    def _trial(self, traces: Sequence[Mapping[str, Any]]) -> Trial | None:
        if not traces:
            return None
        number = traces[0].get("trial")
        found = next((t for t in self.env.history() if t.number == number), None)
        return self._source(found) if found is not None else None

    def propose_new_texts(self, candidate: dict[str, str],
                          reflective_dataset: Mapping[str, Sequence[Mapping[str, Any]]],
                          components_to_update: list[str]) -> dict[str, str]:
        try:
            return {c: self._ask(candidate.get(c, ""), reflective_dataset.get(c, ())) for c in components_to_update}
        except Exception as err:  # sorted by guard: ours stop the run, the rest are GEPA's to handle
            self.bridge.guard(err)
            raise

    def _ask(self, template: str, records: Sequence[Mapping[str, Any]]) -> str:
        k = self._proposals
        self._proposals += 1
        lines = "\n".join(self.prompts.render("record", input=r.get("Inputs", ""),
                                              output=r.get("Generated Outputs", ""),
                                              feedback=str(r.get("Feedback", "")).replace("\n", "; "))
                          for r in records)
        values = {**task_vars(self.env.task), "template": template, "records": lines}
        messages = [self.prompts.message("system", **values), self.prompts.message("user", **values)]
        asked = self.proposer.ask_templates(self.env, messages, f"gepa/p{k}", 1,
                                            self.prompts.render("completion", **values))
        chosen = asked.fresh or asked.repeats
        if chosen:
            return chosen[0].template
        self.rejected[asked.raw] = asked.reason
        return asked.raw


class GepaProposer(Proposer):
    name = "gepa"
    Settings = GepaSettings
    settings: GepaSettings

    def __init__(self, settings: ProposerSettings | None = None) -> None:
        super().__init__(settings)
        self.last: StudyAdapter | None = None  # the last stream's adapter (tests read its calls)
        self.result: Any = None  # GEPA's own result of the last stream

    def run_stream(self, env: ProposerEnv) -> ProposalStream:
        scored = ranked(env.scored())
        if not scored:
            yield [Proposal("gepa/start", None, error="no scored template to start from: the starting pool failed")]
            return
        seed = scored[0]
        n_items = len(_unpack(seed.metrics.get("per_item")))
        if not n_items:
            yield [Proposal("gepa/start", None, error="gepa needs per-image outcomes; the scorer reported none")]
            return
        bridge = _Bridge()
        adapter = self.last = StudyAdapter(self, env, bridge, n_items)
        worker = threading.Thread(target=self._run_gepa, args=(adapter, seed, n_items, env), daemon=True,
                                  name=f"gepa-{env.stream}")
        worker.start()
        try:
            while True:
                kind, payload = bridge.to_study.get()
                if kind == "eval":
                    trials = yield [payload]
                    bridge.to_gepa.put(trials[0])
                elif kind == "error":
                    yield [Proposal(f"gepa/error{len(adapter.calls)}", None, error=payload)]
                    return
                else:
                    if bridge.fatal is not None:
                        raise bridge.fatal
                    return
        finally:
            bridge.to_gepa.put(None)  # a blocked evaluate raises _Stop; GEPA unwinds
            worker.join(timeout=30)

    def _run_gepa(self, adapter: StudyAdapter, seed: Trial, n_items: int, env: ProposerEnv) -> None:
        import gepa

        s = self.settings
        data = list(range(n_items))
        try:
            self.result = gepa.optimize(
                seed_candidate={COMPONENT: seed.template or ""}, trainset=data, valset=data,
                adapter=cast(Any, adapter), candidate_selection_strategy=s.candidate_selection,
                skip_perfect_score=s.skip_perfect_score, perfect_score=1.0,
                reflection_minibatch_size=min(s.reflection_minibatch_size, n_items), use_merge=s.use_merge,
                stop_callbacks=[cast(Any, _OurMeter(adapter, s))], logger=_Quiet(),
                seed=env.derived_seed("gepa"), raise_on_exception=True, display_progress_bar=False)
            adapter.bridge.to_study.put(("done", None))
        except _Stop:
            adapter.bridge.to_study.put(("done", None))
        except Exception as err:  # GEPA's own failure: one failed trial, the run goes on
            message = " ".join(str(err).split())[:300]
            adapter.bridge.to_study.put(("error", f"gepa raised {type(err).__name__}: {message}"))


class _OurMeter:
    """GEPA's stop condition, read from our meter: scorer queries and evaluate calls so far."""

    def __init__(self, adapter: StudyAdapter, settings: GepaSettings) -> None:
        self.adapter, self.settings = adapter, settings

    def __call__(self, gepa_state: Any) -> bool:
        del gepa_state
        a, s = self.adapter, self.settings
        return a.queries >= s.max_queries or len(a.calls) >= s.max_evaluations


class _Quiet:
    """GEPA's logger, silenced: our console shows progress."""

    def log(self, message: str) -> None:
        del message


def build(arg: str, *, options: dict[str, Any]) -> GepaProposer:
    if arg:
        raise ValueError(f"method 'gepa' takes no argument after ':' (got {arg!r})")
    if importlib.util.find_spec("gepa") is None:
        raise GepaMissing(INSTALL_HINT)
    return GepaProposer(GepaSettings.model_validate(options))


__all__ = ["GepaMissing", "GepaProposer", "GepaSettings", "StudyAdapter"]
