"""The T2I scorer: the Scorer a Study climbs on, for a prompt instead of a template.

score(prompt): generate the image(s), save them under RUN/images/, measure the similarity to the
goal, ask the judge, and return a Score whose value is what picks the final prompt (similarity by
default) and whose metrics carry the judge's feedback, its revised prompt and the image paths.
Every generator and judge call goes through the recorded-call layer (calls.py): recorded in the
run's store as an "image" or "judge" call the moment it returns, answered from there on resume (a
killed run never regenerates an image it had received), and charged to the run's one meter.
Their keys are derived as version-1 stores derived them, so those stores replay too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL.Image import Image

from promptclimb.calls import IMAGE, JUDGE, Made, RecordedCalls
from promptclimb.candidate import Score
from promptclimb.chat import ChatRequest, Message
from promptclimb.llm.base import EndpointDown, LLMConfigError, LLMError
from promptclimb.llm.pricing import estimate_cost
from promptclimb.store import CallRecord
from promptclimb.t2i.base import ImageGenerator, Judge, Similarity, T2ITask, Verdict, parse_verdict
from promptclimb.t2i.images import SavedImage, load_saved, open_image, save_generated
from promptclimb.t2i.judges import render
from promptclimb.vlm.base import ScorerConfigError, ScorerError

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


def prompt_seed(seed: int, prompt: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}/{prompt}".encode()).digest()[:4], "big") & 0x7FFFFFFF


class T2IScorer:
    name = "t2i"
    description = "text-to-image: generate the image(s), judge them, measure the similarity"

    def __init__(self, *, run_dir: Path, calls: RecordedCalls, task: T2ITask, generator: ImageGenerator,
                 judge: Judge, similarity: Similarity, objective: str = "similarity", seed: int = 0,
                 n_images: int = 1, max_endpoint_failures: int = 3) -> None:
        self.run_dir, self.calls, self.task = run_dir, calls, task
        self.generator, self.judge, self.similarity = generator, judge, similarity
        self.objective = OBJECTIVES[objective]
        self.seed, self.n_images = seed, n_images
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

    # -- the stopping rule of study.py, for the generator and the judge (calls.Endpoints) ----------
    def down(self) -> BaseException | None:
        return None

    def answered(self, kind: str) -> None:
        self._endpoint_failures = 0

    def failed(self, kind: str, err: LLMError) -> tuple[BaseException | None, str | None]:
        """``max_endpoint_failures`` consecutive calls failed by the endpoint (after retries) stop the
        run, resumable; so does the first such failure of a generator that has not made an image in
        this run yet (the run has nothing to start from). A setup error is raised, not recorded."""
        if isinstance(err, LLMConfigError):
            return None, None
        if not err.retryable:  # a refusal: the endpoint works
            self._endpoint_failures = 0
            return None, str(err)
        self._endpoint_failures += 1
        parts: dict[str, tuple[Any, str, bool]] = {IMAGE: (self.generator, "image generator", True),
                                                   JUDGE: (self.judge, "judge", False)}
        part, what, needs_images = parts[kind]
        nothing_yet = needs_images and not self.calls.meter.usage.images  # nothing to start from
        if self._endpoint_failures < self.max_endpoint_failures and not nothing_yet:
            return None, str(err)
        where = getattr(getattr(part, "transport", None), "where", part.name)
        return EndpointDown(f"the {what} endpoint {where} failed {self._endpoint_failures} calls in a row "
                            f"(last: {err}): check that it runs and answers; the run is saved: once it answers, "
                            f"`promptclimb resume {self.run_dir}`"), str(err)

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
        return Score(self.objective(sims["similarity"], verdict), metrics)

    # -- recorded calls -----------------------------------------------------------------------
    def _generate(self, prompt: str, seed: int) -> list[tuple[SavedImage, Image]]:
        gen = self.generator
        made: list[tuple[SavedImage, Image]] = []
        replayed: list[tuple[SavedImage, Image]] = []
        key = ChatRequest((Message("user", prompt),), temperature=0.0, n=self.n_images, seed=seed).key(gen.cache_id)

        def live() -> Made:
            out = gen.generate(prompt, seed)
            revised = out.revised_prompts
            saved = [save_generated(self.run_dir, key[:16], i, im, prompt=prompt, seed=seed, model=gen.name,
                                    revised_prompt=revised[i] if i < len(revised) else None)
                     for i, im in enumerate(out.images)]
            made.extend(zip(saved, out.images, strict=True))
            return Made({"images": [asdict(s) for s in saved]}, units=len(saved), cost_usd=out.cost_usd)

        def usable(record: CallRecord) -> bool:  # a recorded image whose file is gone is made again
            loaded = load_saved(self.run_dir, [SavedImage(**d) for d in (record.response or {}).get("images", [])])
            replayed.extend(loaded or [])
            return bool(loaded)

        self.calls.call(IMAGE, key, 0, gen.name, {"prompt": prompt, "n": self.n_images, "seed": seed}, live,
                        endpoints=self, units=self.n_images, usable=usable)
        return made or replayed

    def judge_call(self, system: str, user: str) -> str:
        """One judge request, answered from the store when it was made before."""
        judge = self.judge
        key = ChatRequest((Message("system", system), Message("user", user)), temperature=0.0).key(judge.cache_id)

        def live() -> Made:
            got = judge.chat(system, user, self.run_dir)
            cost = estimate_cost(judge.name.partition(":")[2], got.prompt_tokens, got.completion_tokens)
            return Made({"text": got.text}, got.prompt_tokens, got.completion_tokens, cost_usd=cost)

        record = self.calls.call(JUDGE, key, 0, judge.name, {"system": system, "user": user}, live, endpoints=self)
        return str((record.response or {}).get("text", ""))
