"""The T2I scorer: the Scorer a Study climbs on, for a prompt instead of a template.

score(prompt): generate the image(s), save them under RUN/images/, measure the similarity to the
goal, ask the judge, and return a Score whose value is what picks the final prompt (similarity by
default) and whose metrics carry the judge's feedback, its revised prompt and the image paths.
Every generator and judge call goes into the run's Store as an exchange (models "image:..." and
"judge:...") the moment it returns, and is answered from there on resume: a killed run never
regenerates an image it had received. Image and judge costs count against the run's budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL.Image import Image

from promptclimb.candidate import Score
from promptclimb.llm.base import (
    BudgetExhausted,
    ChatReply,
    ChatRequest,
    EndpointDown,
    LLMConfigError,
    LLMError,
    Message,
)
from promptclimb.llm.pricing import estimate_cost
from promptclimb.store import RunStore
from promptclimb.t2i.base import GenerationRefused, ImageGenerator, Judge, Similarity, T2ITask, Verdict, parse_verdict
from promptclimb.t2i.config import T2IBudget
from promptclimb.t2i.images import SavedImage, load_saved, open_image, save_generated
from promptclimb.t2i.judges import render
from promptclimb.vlm.base import ScorerConfigError, ScorerError

IMAGE, JUDGE = "image:", "judge:"

SimilarityFn = Callable[[Similarity, Image, T2ITask, "Image | None"], dict[str, float]]


def _personalize(s: Similarity, im: Image, task: T2ITask, ref: Image | None) -> dict[str, float]:
    identity = s.image_image(im, ref) if ref is not None else 0.0
    edit = s.image_text(im, task.edit or "")
    return {"similarity": (identity + edit) / 2, "identity": identity, "edit": edit}


# What "similar" means for each task: image-text to the intent, image-image to the reference, or both.
SIMILARITY_BY_KIND: dict[str, SimilarityFn] = {
    "generate": lambda s, im, task, ref: {"similarity": s.image_text(im, task.intent or "")},
    "invert": lambda s, im, task, ref: {"similarity": s.image_image(im, ref) if ref is not None else 0.0},
    "personalize": _personalize,
}


def _judge_value(verdict: Verdict) -> float:
    if verdict.score is None:
        raise ScorerError("the objective needs the judge's score and the judge gave none")
    return verdict.score / 10


OBJECTIVES: dict[str, Callable[[float, Verdict], float]] = {
    "similarity": lambda sim, v: sim,
    "judge": lambda sim, v: _judge_value(v),
    "mean": lambda sim, v: sim if v.score is None else (sim + v.score / 10) / 2,
}


@dataclass
class Meter:
    """Image and judge calls so far in this run (from the store, so a resumed run counts them)."""

    images: int = 0
    image_calls: int = 0
    refusals: int = 0
    image_cost_usd: float = 0.0
    judge_calls: int = 0
    judge_tokens: int = 0
    judge_cost_usd: float = 0.0

    @property
    def cost_usd(self) -> float:
        return self.image_cost_usd + self.judge_cost_usd

    @classmethod
    def from_store(cls, store: RunStore) -> Meter:
        m = cls()
        for e in store.exchanges():
            if e.model.startswith(IMAGE):
                m.image_calls += 1
                m.images += len(e.reply.texts) if e.reply else 0
                m.refusals += bool(e.error and "refused the prompt" in e.error)
                m.image_cost_usd += e.cost_usd or 0.0
            elif e.model.startswith(JUDGE):
                m.judge_calls += 1
                m.judge_tokens += e.prompt_tokens + e.completion_tokens
                m.judge_cost_usd += e.cost_usd or 0.0
        return m


def prompt_seed(seed: int, prompt: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}/{prompt}".encode()).digest()[:4], "big") & 0x7FFFFFFF


class T2IScorer:
    name = "t2i"
    description = "text-to-image: generate the image(s), judge them, measure the similarity"

    def __init__(self, *, run_dir: Path, store: RunStore, task: T2ITask, generator: ImageGenerator, judge: Judge,
                 similarity: Similarity, objective: str = "similarity", seed: int = 0,
                 budget: T2IBudget | None = None, n_images: int = 1, max_endpoint_failures: int = 3) -> None:
        self.run_dir, self.store, self.task = run_dir, store, task
        self.generator, self.judge, self.similarity = generator, judge, similarity
        self.objective = OBJECTIVES[objective]
        self.seed, self.budget, self.n_images = seed, budget or T2IBudget(), n_images
        self.other_cost: Callable[[], float] = lambda: 0.0  # the prompt-writing LLM's, set by the run
        self.meter = Meter.from_store(store)
        self.max_endpoint_failures = max_endpoint_failures
        self._endpoint_failures = 0  # consecutive generator or judge calls failed by their endpoint
        self._reference = open_image(run_dir / task.reference) if task.reference else None

    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def score(self, template: str, split: str = "train") -> Score:
        try:
            return self._score(template)
        except EndpointDown:
            raise
        except LLMConfigError as err:  # setup problems stop the run; other errors fail the trial
            raise ScorerConfigError(str(err)) from None

    def _outcome(self, what: str, part: Any, err: LLMError | None) -> None:
        """The stopping rule of study.py for the generator and the judge: ``max_endpoint_failures``
        consecutive calls failed by the endpoint (after retries) stop the run, resumable; so does
        the first such failure of a generator that has not made an image in this run yet (the run
        has nothing to start from)."""
        if err is None or not err.retryable:  # an answer, or a refusal: the endpoint works
            self._endpoint_failures = 0
            return
        self._endpoint_failures += 1
        if self._endpoint_failures >= self.max_endpoint_failures or (part is self.generator and not self.meter.images):
            where = getattr(getattr(part, "transport", None), "where", part.name)
            raise EndpointDown(f"the {what} endpoint {where} failed {self._endpoint_failures} calls in a row "
                               f"(last: {err}): "
                               f"check that it runs and answers; the run is saved: once it answers, "
                               f"`promptclimb resume {self.run_dir}`") from None

    def _score(self, prompt: str) -> Score:
        seed = prompt_seed(self.seed, prompt)
        pairs = self._generate(prompt, seed)
        parts = [SIMILARITY_BY_KIND[self.task.kind](self.similarity, im, self.task, self._reference)
                 for _, im in pairs]
        sims = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
        judge_error = None
        try:
            verdict = parse_verdict(self.judge_call(*render(self.task.case(prompt, tuple(s.path for s, _ in pairs)),
                                                            self.run_dir, "compare")))
        except LLMConfigError:
            raise
        except LLMError as err:  # the image is paid for: keep the trial, without the judge's words
            verdict, judge_error = Verdict(feedback=f"(no judge feedback: {err})"), str(err)
        metrics: dict[str, Any] = {
            "similarity": round(sims["similarity"], 6),
            **{f"similarity_{k}": round(v, 6) for k, v in sims.items() if k != "similarity"},
            **verdict.to_metrics(), "judge_error": judge_error, "images": [s.path for s, _ in pairs],
            "seed": seed, "provider_revised_prompt": pairs[0][0].revised_prompt,
        }
        self.store.set_result("t2i_usage", {**asdict(self.meter), "cost_usd": self.meter.cost_usd})
        return Score(self.objective(sims["similarity"], verdict), metrics)

    # -- recorded calls -----------------------------------------------------------------------
    def _generate(self, prompt: str, seed: int) -> list[tuple[SavedImage, Image]]:
        gen = self.generator
        request = ChatRequest((Message("user", prompt),), temperature=0.0, n=self.n_images, seed=seed)
        key = request.key(gen.cache_id)
        hit = self.store.find_exchange(key, 0)
        if hit is not None and hit.reply is not None:
            loaded = load_saved(self.run_dir, [SavedImage.from_json(t) for t in hit.reply.texts])
            if loaded:
                return loaded
        self._check_budget()
        started = time.time()
        try:
            out = gen.generate(prompt, seed)
        except LLMError as err:
            if not isinstance(err, LLMConfigError):
                self.store.add_exchange(key, 0, IMAGE + gen.name, request, None, str(err), None, started)
                self.meter.image_calls += 1
                self.meter.refusals += isinstance(err, GenerationRefused)
                self._outcome("image generator", gen, err)
            raise
        self._outcome("image generator", gen, None)
        saved = [save_generated(self.run_dir, key[:16], i, im, prompt=prompt, seed=seed, model=gen.name,
                                revised_prompt=out.revised_prompts[i] if i < len(out.revised_prompts) else None)
                 for i, im in enumerate(out.images)]
        reply = ChatReply(tuple(s.to_json() for s in saved), model=gen.name, latency_s=time.time() - started)
        self.store.add_exchange(key, 0, IMAGE + gen.name, request, reply, None, out.cost_usd, started)
        self.meter.image_calls += 1
        self.meter.images += len(saved)
        self.meter.image_cost_usd += out.cost_usd or 0.0
        return list(zip(saved, out.images, strict=True))

    def judge_call(self, system: str, user: str) -> str:
        """One judge request, answered from the store when it was made before."""
        request = ChatRequest((Message("system", system), Message("user", user)), temperature=0.0)
        key = request.key(self.judge.cache_id)
        hit = self.store.find_exchange(key, 0)
        if hit is not None and hit.reply is not None:
            return hit.reply.text
        started = time.time()
        model = JUDGE + self.judge.name
        try:
            got = self.judge.chat(system, user, self.run_dir)
        except LLMError as err:
            if not isinstance(err, LLMConfigError):
                self.store.add_exchange(key, 0, model, request, None, str(err), None, started)
                self._outcome("judge", self.judge, err)
            raise
        self._outcome("judge", self.judge, None)
        cost = estimate_cost(self.judge.name.partition(":")[2], got.prompt_tokens, got.completion_tokens)
        reply = ChatReply((got.text,), got.prompt_tokens, got.completion_tokens, self.judge.name,
                          latency_s=time.time() - started)
        self.store.add_exchange(key, 0, model, request, reply, None, cost, started)
        self.meter.judge_calls += 1
        self.meter.judge_tokens += got.prompt_tokens + got.completion_tokens
        self.meter.judge_cost_usd += cost or 0.0
        return got.text

    def _check_budget(self) -> None:
        b = self.budget
        if b.images is not None and self.meter.images + self.n_images > b.images:
            raise BudgetExhausted(f"images={b.images}")
        if b.cost_usd is not None and self.meter.cost_usd + self.other_cost() >= b.cost_usd:
            raise BudgetExhausted(f"cost_usd={b.cost_usd}")
