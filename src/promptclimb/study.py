"""The Study owns the loop: ask the proposer, score, record, tell; with the seed and the budget.

Every trial and LLM exchange is written to the store as it happens. A resumed Study replays the
proposer from the start with the same seed: trials already in the store are found by position
key and LLM replies by request hash, so nothing recorded is redone and the run continues where
it stopped. Independent streams (restarts) may run in threads (``n_jobs``) against remote LLMs.

Endpoint failures are not weak replies. A failed LLM call (after the backend's own retries) costs
its trial and the run goes on, unless the endpoint is down by this rule: the first call the
endpoint refuses outright (a setup error such as 401 or 404), or ``max_endpoint_failures``
consecutive calls failing with endpoint errors (connection, timeout, HTTP status, a body that is
not the API's JSON). Then the run stops with EndpointDown (one line: endpoint, status, fix),
is not marked finished, and ``promptclimb resume`` asks the stopping call again. Failures that
cost a trial are replayed on resume as they were, so no position is ever recorded twice.

Scoring is counted in queries and in images scored (``metrics["images_scored"]`` of every trial: train,
plus val when scored). With ``racing`` (racing.py) a new candidate is scored on nested subsets of
the train images and stops (pruned) once it cannot reach the top-k.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from promptclimb.calls import LLM, Budget, Made, Meter, RecordedCalls, Usage
from promptclimb.candidate import Score, Trial, TrialState
from promptclimb.llm.base import (
    BudgetExhausted,
    CacheMiss,
    ChatLLM,
    ChatReply,
    ChatRequest,
    EndpointDown,
    LLMConfigError,
    LLMError,
    LLMReplyError,
)
from promptclimb.llm.cache import CachedLLM
from promptclimb.prompt_set import PromptSet, is_set_key
from promptclimb.proposers.base import LLMAnswer, Proposal, ProposalStream, Proposer, ProposerEnv
from promptclimb.racing import IMAGES_SCORED, Racing
from promptclimb.selection import BestTrainSelector, Selector
from promptclimb.store import ENDPOINT_FAILED, STOPPED, RunStore, StoreError
from promptclimb.tasks.base import TaskInfo
from promptclimb.vlm.base import Scorer, ScorerConfigError, SubsetScorer, check_scorer, score_prompt

Callback = Callable[["Study", Trial], None]


class Evaluation(Protocol):
    """Post-hoc evaluation of a finished loop (evaluation.py); it never changes the pick."""

    def evaluate(self, store: RunStore, result: StudyResult) -> StudyResult: ...
POOL = "pool"


@dataclass(frozen=True)
class StudyResult:
    best: Trial | None
    ranking: tuple[Trial, ...]
    test_score: Score | None
    stopped_by: str | None
    usage: Usage
    warnings: tuple[str, ...] = ()


class Study:
    def __init__(
        self,
        *,
        store: RunStore,
        proposer: Proposer,
        scorer: Scorer,
        task: TaskInfo,
        llm: ChatLLM | None = None,
        seed: int = 0,
        budget: Budget | None = None,
        callbacks: Sequence[Callback] = (),
        score_val: bool = False,
        selector: Selector | None = None,
        cost_fn: Callable[[ChatReply], float | None] | None = None,
        evaluation: Evaluation | None = None,
        max_failed_replies: int = 6,
        max_endpoint_failures: int = 3,
        calls: RecordedCalls | None = None,
        racing: Racing | None = None,
    ) -> None:
        self.store, self.proposer, self.scorer, self.task = store, proposer, scorer, task
        check_scorer(scorer, proposer.scorer_needs(), proposer.name)
        self.seed = seed
        # Every outside call goes through the recorded-call layer and charges its meter (calls.py).
        self.calls = calls or RecordedCalls(store, Meter(budget))
        self.budget = self.calls.meter.budget
        self.callbacks = list(callbacks)
        self.score_val = score_val and "val" in scorer.splits()
        self.selector = selector or BestTrainSelector()
        self.cost_fn = cost_fn
        self.evaluation = evaluation
        self.racing = racing
        self.stopped_by: str | None = None
        self.max_failed_replies = max_failed_replies
        self.max_endpoint_failures = max_endpoint_failures
        self.warnings: list[str] = []
        # Calls are numbered by request and sample (a CachedLLM, with the run's cache when it has one).
        self._llm = llm if isinstance(llm, CachedLLM) or llm is None else CachedLLM(llm, None)
        self._lock = threading.RLock()
        self._score_lock = threading.Lock()  # scorers (torch models) are not assumed thread-safe
        self._endpoint = _LLMEndpoint(self)
        self._recorded = {st.key: st.trial for st in store.stored_trials()}
        self._by_template: dict[str, Trial] = {}
        self._seen: dict[str, list[Trial]] = defaultdict(list)  # stream -> its trials
        self._calls = 0
        self._cursor: _Cursor | None = None

    @property
    def usage(self) -> Usage:
        return self.calls.meter.usage

    # -- the public loop ------------------------------------------------------------------
    def optimize(self, n_jobs: int = 1) -> StudyResult:
        """Run the starting pool, then every stream (concurrently when n_jobs > 1), then select."""
        self._drive(POOL, self.proposer.run_pool(self._env(POOL)))
        streams = range(self.proposer.n_streams())
        if n_jobs <= 1:
            for s in streams:
                self._drive(str(s), self.proposer.run_stream(self._env(str(s))))
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                futures = [pool.submit(self._drive, str(s), self.proposer.run_stream(self._env(str(s))))
                           for s in streams]
                for f in futures:
                    f.result()
        return self.finish()

    def ask(self) -> Proposal | None:
        """The next proposal (sequential use), or None when the proposer and budget are done."""
        if self._cursor is None:
            self._cursor = _Cursor(self)
        return self._cursor.ask()

    def tell(self, proposal: Proposal, score: Score | None = None, error: str | None = None) -> Trial:
        """Record the outcome of a proposal scored by the caller."""
        trial = self._record(proposal, self._stream_of(proposal), score, error)
        if self._cursor is not None:
            self._cursor.told.append(trial)
        return trial

    def trials(self) -> list[Trial]:
        return self.store.trials()

    # -- driving streams ------------------------------------------------------------------
    def _env(self, stream: str) -> ProposerEnv:
        def history() -> list[Trial]:
            return self._history(stream)

        return ProposerEnv(
            task=self.task, seed=self.seed, stream=stream if stream == POOL else int(stream),
            rng=random.Random(f"{self.seed}/{stream}"),
            chat=lambda request: self._chat(request), history=history,
        )

    def _drive(self, stream: str, gen: ProposalStream) -> None:
        failures, last = 0, ""
        try:
            batch = next(gen)
            while self.stopped_by is None:
                trials = [self._process(p, stream) for p in batch]
                unusable = [t for t in trials if t.state is TrialState.FAILED and t.template is None
                            and not (t.error or "").startswith("endpoint error")]  # weak replies only
                failures = failures + 1 if trials and len(unusable) == len(trials) else 0
                last = unusable[-1].error or "" if unusable else last
                if failures >= self.max_failed_replies:
                    self.warn(f"stream {stream}: the LLM gave no usable template {failures} times in a row "
                              f"(last: {last[:120]}); stopped this stream. Use a stronger model, or the "
                              "llamacpp backend whose grammar forces the template shape")
                    break
                batch = gen.send(trials)
        except StopIteration:
            pass
        except BudgetExhausted as stop:
            self.stopped_by = stop.what
        finally:
            gen.close()

    def warn(self, message: str) -> None:
        """Keep a warning for the result, the store (the report) and the console."""
        with self._lock:
            self.warnings.append(message)
            self.store.set_result("warnings", self.warnings)

    def _stream_of(self, p: Proposal) -> str:
        return POOL if p.key.startswith("pool/") else str(p.restart)

    # -- one proposal ---------------------------------------------------------------------
    def _process(self, p: Proposal, stream: str) -> Trial:
        replayed = self._replayed(p, stream)
        if replayed is not None:
            return replayed
        if p.candidate is None or p.prompt is None:
            return self._record(p, stream, None, p.error or "no candidate")
        with self._lock:
            first = self._by_template.get(p.prompt)
        if first is not None:
            return self._record(p, stream, None, None, duplicate_of=first)
        self._charge_scorer()
        # A prompt set scores as one classifier, one query like a template (vlm/base.py score_prompt).
        # Racing (racing.py) races plain templates only; a prompt set is scored on the whole split.
        what = p.candidate if isinstance(p.candidate, PromptSet) else p.candidate.template
        race = None
        try:
            with self._score_lock:
                if self.racing is not None and not is_set_key(p.prompt):
                    race = self.racing.race(p.prompt, self._history(stream))
                    score = race.score
                else:
                    score = score_prompt(self.scorer, what, "train")
                val = score_prompt(self.scorer, what, "val") if self.score_val and score is not None else None
        except (ScorerConfigError, EndpointDown, BudgetExhausted, KeyboardInterrupt):  # so does its own budget
            raise
        except Exception as err:  # a VLM error fails this trial, not the run
            return self._record(p, stream, None, f"scorer: {type(err).__name__}: {err}")
        extra = race.metrics() if race is not None else None
        return self._record(p, stream, score, race.pruned if race else None, val=val, extra=extra)

    def _history(self, stream: str) -> list[Trial]:
        """What a stream sees (the pool and its own trials): racing's top-k, whatever other threads do."""
        with self._lock:
            return [*self._seen[POOL], *(self._seen[stream] if stream != POOL else [])]

    def _replayed(self, p: Proposal, stream: str) -> Trial | None:
        trial = self._recorded.get(p.key)
        if trial is None:
            return None
        expected = p.prompt
        if trial.template != expected:
            raise StoreError(
                f"the run diverged from its store at {p.key}: stored {trial.template!r}, now "
                f"{expected!r} (code or config changed); start a new run with another --out")
        self._remember(trial, stream)
        return trial

    def _record(self, p: Proposal, stream: str, score: Score | None, error: str | None,
                *, val: Score | None = None, duplicate_of: Trial | None = None,
                extra: dict[str, Any] | None = None) -> Trial:
        now = time.time()
        template = p.prompt  # a template, or a prompt set's key
        queries = (score is not None) + (val is not None)
        metrics: dict[str, Any] = {"queries": queries or (1 if error and error.startswith("scorer:") else 0)}
        if score is not None:
            metrics.update(score.metrics)
            if score.per_item is not None and len(score.per_item) <= 20000:
                metrics["per_item"] = _pack(score.per_item)
            if score.predictions is not None and score.labels is not None and len(score.labels) <= 20000:
                metrics["labels"], metrics["predictions"] = list(score.labels), list(score.predictions)
        metrics[IMAGES_SCORED] = _n_images(score) + _n_images(val)  # after the scorer's metrics (t2i: "images")
        metrics.update(extra or {})
        if duplicate_of is not None:
            state, train, val_v = TrialState.DUPLICATE, duplicate_of.train_score, duplicate_of.val_score
        elif score is not None:
            state, train, val_v = TrialState.COMPLETE, score.value, val.value if val else None
        else:
            state, train, val_v = TrialState.FAILED, None, None
        trial = Trial(
            number=-1, state=state, template=template, raw=p.raw[:2000], proposer=self.proposer.name,
            restart=p.restart, reset=p.reset, iteration=p.iteration, train_score=train,
            val_score=val_v, metrics=metrics, error=error,
            duplicate_of=duplicate_of.number if duplicate_of else None, exchange_id=p.exchange_id,
            started_at=now, finished_at=time.time(),
        )
        trial = self.store.append_trial(p.key, trial)
        self._remember(trial, stream)
        return trial

    def _remember(self, trial: Trial, stream: str) -> None:
        with self._lock:
            self._seen[stream].append(trial)
            if trial.state is TrialState.COMPLETE and trial.template:
                self._by_template.setdefault(trial.template, trial)
        self.calls.meter.add_queries(int(trial.metrics.get("queries", 0)), int(trial.metrics.get(IMAGES_SCORED, 0)))
        for cb in self.callbacks:
            cb(self, trial)

    def _charge_scorer(self) -> None:
        """Before a scoring: the queries, and the images of its whole scoring, must fit the budget."""
        self.calls.meter.check_queries(1 + self.score_val, self._trial_images()
                                       if self.budget.scorer_images is not None else 0)

    def _trial_images(self) -> int:
        if not isinstance(self.scorer, SubsetScorer):
            return 0  # not known before scoring: the image budget then stops the run once reached
        return sum(len(self.scorer.split_labels(s)) for s in ("train", "val")[: 1 + self.score_val])

    # -- LLM calls ------------------------------------------------------------------------
    def _chat(self, request: ChatRequest) -> LLMAnswer:
        llm = self._llm
        if llm is None:
            raise LLMConfigError(f"method {self.proposer.name!r} needs an LLM: pass --llm")
        key = request.key(llm.cache_id)
        sample = llm.next_sample(key)
        with self._lock:
            self._calls += 1
            numbered = replace(request, call_number=self._calls - 1)

        def live() -> Made:
            reply = llm.chat_at(numbered, key, sample)
            return Made(reply.to_json(), reply.prompt_tokens, reply.completion_tokens,
                        cost_usd=self.cost_fn(reply) if self.cost_fn else None)

        record = self.calls.call(LLM, key, sample, llm.name, request.to_json(), live, endpoints=self._endpoint)
        return LLMAnswer(ChatReply.from_json(record.response or {}), record.id)

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> StudyResult:
        """Select the final template on train (and val) and record it; then the run's post-hoc
        evaluation, if it has one (evaluation.py: the test score of the pick, report-only
        references, ensembles and oracles); then mark the run finished."""
        trials = self._val_of_top(self.store.trials())
        ranking = self.selector.select(trials)
        best = ranking[0] if ranking else None
        self.store.set_result("final", {
            "template": best.template if best else None,
            "trial": best.number if best else None,
            "train_score": best.train_score if best else None,
            "val_score": best.val_score if best else None,
            "test_score": None,
            "test_per_class": None,
            "selector": self.selector.name,
            "stopped_by": self.stopped_by,
            "ranking": [t.number for t in ranking[:20]],
        })
        result = StudyResult(best, tuple(ranking), None, self.stopped_by, self.usage, tuple(self.warnings))
        if self.evaluation is not None:
            with self._score_lock:
                result = self.evaluation.evaluate(self.store, result)
        self.store.set_result("usage", self.usage.to_json())
        self.store.set_meta("finished", "true")
        return result

    def _val_of_top(self, trials: list[Trial]) -> list[Trial]:
        """Val scores for the trials a selector asks for (``needs_val``, e.g. best_val_top10's top 10).
        Each is stored on its trial with its query and images in the trial's metrics, where every
        count of a run's cost looks, so a resumed finish neither rescores nor loses them."""
        needs_val = getattr(self.selector, "needs_val", None)
        if not callable(needs_val):
            return trials
        if "val" not in self.scorer.splits():
            self.warn(f"selection {self.selector.name}: the task has no val split, so it chose as best_train")
            return trials
        rescored: dict[int, Trial] = {}
        for t in needs_val(trials):
            try:
                with self._score_lock:
                    val = score_prompt(self.scorer, t.template or "", "val")
            except Exception as err:  # it keeps its train rank, after those scored on val
                self.warn(f"selection {self.selector.name}: trial {t.number} not scored on val: {err}")
                continue
            images = _n_images(val)
            metrics = {**t.metrics, "queries": int(t.metrics.get("queries", 0)) + 1,
                       IMAGES_SCORED: int(t.metrics.get(IMAGES_SCORED, 0)) + images, "val_at_finish": True}
            self.store.set_val_score(t.number, val.value, metrics)
            self.calls.meter.add_queries(1, images)
            rescored[t.number] = t.with_(val_score=val.value, metrics=metrics)
        return [rescored.get(t.number, t) for t in trials]


class _LLMEndpoint:
    """The stopping rule of the module docstring, for the chat LLM's calls."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.failures = 0  # consecutive live calls the endpoint failed
        self._down: EndpointDown | None = None
        self._lock = threading.Lock()

    def down(self) -> EndpointDown | None:
        return self._down

    def answered(self, kind: str) -> None:
        with self._lock:
            self.failures = 0

    def failed(self, kind: str, err: LLMError) -> tuple[BaseException | None, str | None]:
        stop = self._verdict(err)
        text = f"{STOPPED}{err}" if stop is not None or isinstance(err, CacheMiss) else \
            f"{ENDPOINT_FAILED}{err}" if err.retryable else str(err)
        return stop, text

    def _verdict(self, err: LLMError) -> EndpointDown | None:
        resume = f"the run is saved: once it answers, `promptclimb resume {self.study.store.path.parent}`"
        with self._lock:
            if self._down is not None:
                return self._down
            if isinstance(err, CacheMiss | LLMReplyError):
                if isinstance(err, LLMReplyError):
                    self.failures = 0  # the endpoint answered; the model was weak
                return None
            if isinstance(err, LLMConfigError):
                self._down = EndpointDown(f"{err}; {resume}")
                return self._down
            self.failures += 1
            if self.failures >= self.study.max_endpoint_failures:
                self._down = EndpointDown(
                    f"the LLM endpoint failed {self.failures} calls in a row (last: {err}): "
                    f"check that it runs and answers; {resume}")
            return self._down


def _n_images(score: Score | None) -> int:
    """The images a score was computed on (0 when its scorer does not say)."""
    if score is None:
        return 0
    return len(score.per_item if score.per_item is not None else score.labels or ())


def _pack(items: Sequence[float]) -> str | list[float]:
    """Per-item outcomes, compactly: a '0'/'1' string when they are correctness bits."""
    if all(v in (0.0, 1.0) for v in items):
        return "".join("1" if v else "0" for v in items)
    return [round(float(v), 5) for v in items]


class _Cursor:
    """ask/tell over the same streams, for callers who score proposals themselves."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.streams = deque([(POOL, study.proposer.run_pool(study._env(POOL)))] + [
            (str(s), study.proposer.run_stream(study._env(str(s))))
            for s in range(study.proposer.n_streams())])
        self.pending: deque[Proposal] = deque()
        self.told: list[Trial] = []
        self.started = False

    def ask(self) -> Proposal | None:
        while not self.pending and self.streams and self.study.stopped_by is None:
            name, gen = self.streams[0]
            try:
                batch = next(gen) if not self.started else gen.send(self.told)
            except StopIteration:
                self.streams.popleft()
                self.started = False
                continue
            except BudgetExhausted as stop:
                self.study.stopped_by = stop.what
                return None
            self.started, self.told = True, []
            for p in batch:
                replayed = self.study._replayed(p, name)
                if replayed is not None:
                    self.told.append(replayed)
                else:
                    self.pending.append(p)
            if not self.pending and self.told:
                continue
        return self.pending.popleft() if self.pending else None
