"""Racing (successive halving in the Study's scoring path): the rule on constructed per-image
outcomes where the answer is known, its setup errors, images counted, and resume replaying it."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.candidate import Score, Trial, TrialState
from promptclimb.config import ConfigError, RacingConfig, RunConfig
from promptclimb.evaluation import PostHocEvaluation
from promptclimb.proposers import build_method
from promptclimb.racing import (
    PRUNED,
    Racing,
    build_racing,
    default_minibatch,
    interleaved_order,
    is_pruned,
    rung_sizes,
)
from promptclimb.store import RunStore
from promptclimb.study import Budget, Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM
from promptclimb.testing.scripted import default_replies

N, CLASSES = 40, 4  # fake images: image i is of class i % 4


def bits(rows: set[int]) -> str:
    return "".join("1" if i in rows else "0" for i in range(N))


def full_trial(number: int, template: str, outcome: str) -> Trial:
    """A fully scored trial as the Study records it (per-image outcomes packed)."""
    return Trial(number, TrialState.COMPLETE, template, train_score=outcome.count("1") / N,
                 metrics={"per_item": outcome, "queries": 1, "images_scored": N})


def racing(outcomes: dict[str, str], top_k: int = 1) -> tuple[Racing, FakeScorer]:
    scorer = FakeScorer(N, n_classes=CLASSES, outcomes=outcomes)
    return Racing(scorer, seed=1, minibatch=10, top_k=top_k), scorer


def test_rungs_are_nested_seeded_and_class_balanced() -> None:
    assert rung_sizes(20, 160) == [20, 40, 80, 160]
    assert rung_sizes(20, 100) == [20, 40, 80, 100]
    assert rung_sizes(10, 10) == [10]
    assert [default_minibatch(16 * 10, 10), default_minibatch(4 * 10, 10), default_minibatch(10, 10)] == [20, 10, 10]
    labels = [i % CLASSES for i in range(N)]
    order = interleaved_order(labels, 1)
    assert sorted(order) == list(range(N)) and order == interleaved_order(labels, 1)
    assert order != interleaved_order(labels, 2)
    for j in range(1, N // CLASSES + 1):  # every prefix of j classes' worth holds j images a class
        assert sorted(labels[r] % CLASSES for r in order[: j * CLASSES]) == sorted(list(range(CLASSES)) * j)


def test_a_clearly_worse_candidate_is_pruned_at_the_first_rung() -> None:
    race, scorer = racing({"best {}": "1" * N, "bad {}": "0" * N})
    out = race.race("bad {}", [full_trial(0, "best {}", "1" * N)])
    assert out.score is None and out.images == 10
    assert out.pruned is not None and out.pruned.startswith("pruned by racing at 10/40 images")
    assert scorer.row_calls == [("bad {}", "train", 10)] and scorer.calls == []  # never scored in full
    assert out.rungs == [{"images": 10, "score": 0.0, "kth": 1.0, "slack": round(2 * 10 ** 0.5 / 10, 6)}]


def test_a_candidate_as_good_as_the_top_is_promoted_to_the_full_split() -> None:
    top = bits(set(range(0, N, 2)))
    race, scorer = racing({"best {}": top, "twin {}": top})
    out = race.race("twin {}", [full_trial(0, "best {}", top)])
    assert out.pruned is None and out.score is not None and out.score.value == 0.5 and out.images == N
    assert [r["images"] for r in out.rungs] == [10, 20] and all(r["slack"] == 0.0 for r in out.rungs)
    assert scorer.calls == [("twin {}", "train")]


def test_the_comparison_is_paired_on_the_same_images() -> None:
    race, _ = racing({})
    first = set(race.order[:10].tolist())
    rest = set(range(N)) - first
    # the k-th best is right on exactly the first rung's images (10/40 overall); a candidate right on 20
    # other images (20/40 overall, better) loses every image of that rung: paired, it is pruned
    kth, cand = bits(first), bits(set(sorted(rest)[:20]))
    race, _ = racing({"kth {}": kth, "cand {}": cand})
    out = race.race("cand {}", [full_trial(0, "kth {}", kth)])
    assert out.pruned is not None and out.images == 10
    # and the other way round: far worse overall (10/40 vs 30/40) but right exactly where the k-th best
    # is wrong on the rungs' images: never behind on them, so promoted to the full split
    kth = bits(rest)
    race, _ = racing({"kth {}": kth, "cand {}": bits(first)})
    out = race.race("cand {}", [full_trial(0, "kth {}", kth)])
    assert [(r["score"], r["kth"]) for r in out.rungs] == [(1.0, 0.0), (0.5, 0.5)]
    assert out.pruned is None and out.images == N and out.score is not None and out.score.value == 0.25


def test_the_kth_best_is_the_bar_and_fewer_than_k_scored_means_full() -> None:
    race, _ = racing({"a {}": "1" * N, "b {}": bits(set(range(20))), "c {}": bits(set(range(20)))}, top_k=2)
    assert race.race("c {}", [full_trial(0, "a {}", "1" * N)]).images == N  # only one fully scored
    history = [full_trial(0, "a {}", "1" * N), full_trial(1, "b {}", bits(set(range(20))))]
    out = race.race("c {}", history)
    assert out.pruned is None and out.images == N  # the same as the 2nd best: goes through


def test_the_console_knows_a_pruned_trial_by_racings_own_prefix() -> None:
    from promptclimb.report import console

    assert console.PRUNED == PRUNED


def test_setup_errors_are_one_line() -> None:
    scorer = FakeScorer(160)
    with pytest.raises(ConfigError, match=r"^racing.minibatch=500 but the train split has 160 images$"):
        build_racing(RacingConfig(enabled=True, minibatch=500), scorer, 1)
    with pytest.raises(ConfigError, match=r"^racing.minibatch=0 must be at least 1 image$"):
        build_racing(RacingConfig(enabled=True, minibatch=0), scorer, 1)

    class Plain:
        name, description = "plain", "no rows"

        def splits(self) -> tuple[str, ...]:
            return ("train",)

        def score(self, template: str, split: str = "train") -> Score:
            return Score(0.5)

    with pytest.raises(ConfigError, match="racing needs a scorer that scores some of the train images; plain"):
        build_racing(RacingConfig(enabled=True), Plain(), 1)  # type: ignore[arg-type]
    assert build_racing(RacingConfig(), Plain(), 1) is None  # type: ignore[arg-type]


def test_racing_settings_come_from_method_options_or_their_own_table() -> None:
    on = RunConfig.model_validate({"method_options": {"racing": True, "restarts": 2}})
    assert on.racing.enabled and on.method_options == {"restarts": 2}
    table = RunConfig.model_validate({"racing": {"minibatch": 40}})
    assert table.racing.enabled and table.racing.minibatch == 40
    assert not RunConfig.model_validate({"racing": {"enabled": False, "top_k": 2}}).racing.enabled
    assert not RunConfig().racing.enabled
    stored = RunConfig.model_validate(on.model_dump(mode="json"))  # what resume reads back
    assert stored == on


HC = {"restarts": 2, "resets": 2, "iterations": 3}


def _study(tmp_path: Path, scorer: FakeScorer, *, name: str = "run", racing_on: bool = True,
           llm: ScriptedLLM | None = None, **kw: object) -> Study:
    run = tmp_path / name
    store = RunStore.open(run) if run.exists() else RunStore.create(run, {})
    race = Racing(scorer, seed=1, top_k=2) if racing_on else None
    return Study(store=store, proposer=build_method("hill_climb", HC), scorer=scorer,
                 task=build_task("demo", shots=1, seed=1).info, llm=llm or ScriptedLLM(default_replies()),
                 seed=1, evaluation=PostHocEvaluation(scorer), racing=race, **kw)  # type: ignore[arg-type]


def _signature(store: RunStore) -> list[tuple[object, ...]]:
    return [(s.key, s.trial.state.value, s.trial.template, s.trial.train_score, s.trial.error,
             s.trial.metrics.get("images_scored")) for s in store.stored_trials()]


def test_a_racing_run_prunes_counts_images_and_never_selects_a_pruned_template(tmp_path: Path) -> None:
    scorer = FakeScorer(160, n_classes=CLASSES)
    study = _study(tmp_path, scorer)
    result = study.optimize()
    trials = study.trials()
    pruned = [t for t in trials if is_pruned(t)]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert pruned and complete
    assert all(t.metrics["images_scored"] in (20, 40, 80) and t.metrics["queries"] == 1 for t in pruned)
    assert all(t.train_score is None and t.duplicate_of is None for t in pruned)
    assert all(t.metrics["images_scored"] == 160 for t in complete)
    assert study.usage.scorer_images == sum(int(t.metrics.get("images_scored", 0)) for t in trials)
    assert study.usage.scorer_images < 160 * study.usage.scorer_queries
    assert result.best is not None and result.best.state is TrialState.COMPLETE
    assert not {t.template for t in pruned} & {t.template for t in result.ranking}
    assert study.store.result("usage")["scorer_images"] == study.usage.scorer_images


def test_a_pruned_template_proposed_again_is_raced_again_not_a_duplicate(tmp_path: Path) -> None:
    scorer = FakeScorer(160, n_classes=CLASSES, outcomes={"a blurry {}.": "0" * 160})
    llm = ScriptedLLM(["a blurry {}."])
    study = _study(tmp_path, scorer, llm=llm)
    study.optimize()
    again = [t for t in study.trials() if t.template == "a blurry {}."]
    assert len(again) == 12 and all(is_pruned(t) for t in again)
    # hill climbing tells the LLM it was worse and stopped early, with its score on the images seen
    said = "\n".join(m.content for r in llm.requests for m in r.messages)
    assert '"a blurry {}." scores lower than the best templates so far: it was stopped after part of the images ' \
           "(0.0% on them)" in said


def test_without_racing_a_trial_costs_the_whole_split_per_query(tmp_path: Path) -> None:
    scorer = FakeScorer(40)
    study = _study(tmp_path, scorer, racing_on=False, score_val=True)
    study.optimize()
    scored = [t for t in study.trials() if t.metrics.get("queries")]
    assert all(t.metrics["images_scored"] == 40 * t.metrics["queries"] for t in scored)
    assert study.usage.scorer_images == 40 * study.usage.scorer_queries


@pytest.mark.parametrize("racing_on", [False, True])
def test_an_image_budget_stops_the_run_cleanly_before_a_trial_it_cannot_pay(
        tmp_path: Path, racing_on: bool) -> None:
    study = _study(tmp_path, FakeScorer(40), racing_on=racing_on, budget=Budget(scorer_images=100))
    result = study.optimize()
    assert result.stopped_by == "scorer_images=100" and study.store.finished
    assert study.usage.scorer_images <= 100 and len(study.trials()) == 2  # a third would need 40 more
    assert result.best is not None


def test_a_killed_racing_run_resumes_identically(tmp_path: Path) -> None:
    reference = _study(tmp_path, FakeScorer(160, n_classes=CLASSES), name="ref")
    reference.optimize()
    assert any(is_pruned(t) for t in reference.trials())

    class Crash(BaseException):
        pass

    class CrashingScorer(FakeScorer):
        def score_rows(self, template: str, split: str, rows: object) -> Score:
            if len(self.row_calls) == 45:  # mid-conversation (63 in all)
                raise Crash
            return super().score_rows(template, split, rows)  # type: ignore[arg-type]

    with pytest.raises(Crash):
        _study(tmp_path, CrashingScorer(160, n_classes=CLASSES)).optimize()
    recorded = {st.key for st in RunStore.open(tmp_path / "run").stored_trials()}
    assert 20 < len(recorded) < len(reference.trials())

    scorer = FakeScorer(160, n_classes=CLASSES)
    resumed = _study(tmp_path, scorer)
    resumed.optimize()
    # only the positions not recorded are scored, each rung once: what the reference did for them
    new = [st.trial for st in resumed.store.stored_trials() if st.key not in recorded]
    expected = sorted((t.template, r["images"]) for t in new for r in t.metrics.get("racing", ())) + \
        sorted((t.template, 160) for t in new if t.state is TrialState.COMPLETE)
    made = sorted((c[0], c[2]) for c in scorer.row_calls if c[1] == "train") + \
        sorted((c[0], 160) for c in scorer.calls if c[1] == "train")
    assert made == expected and made
    assert _signature(resumed.store) == _signature(reference.store)
    assert resumed.usage.scorer_images == reference.usage.scorer_images
    assert resumed.store.result("final") == reference.store.result("final")


def test_a_racing_ensemble_run_prunes_plain_templates_only_and_scores_ensembles_in_full(tmp_path: Path) -> None:
    from promptclimb.prompt_set import is_set_key, parse_set_key

    a, b, c, bad, blurry = "a photo of a {}.", "a sketch of a {}.", "a drawing of a {}.", "art of the {}.", \
        "a blurry {}."
    outcomes = {a: bits(set(range(36))), b: bits(set(range(4, N))), c: bits(set(range(0, N, 2)) | set(range(20))),
                bad: "0" * N, blurry: "0" * N}
    (tmp_path / "pool.txt").write_text("\n".join([a, b, c, bad]) + "\n")
    options = {"pool": {"source": "file", "path": str(tmp_path / "pool.txt")}, "llm_templates": 1}
    scorer = FakeScorer(N, n_classes=CLASSES, outcomes=outcomes)
    study = Study(store=RunStore.create(tmp_path / "run", {}), proposer=build_method("ensemble", options),
                  scorer=scorer, task=build_task("demo", shots=1, seed=1).info, llm=ScriptedLLM([blurry]),
                  seed=1, racing=Racing(scorer, seed=1, top_k=2))
    result = study.optimize()
    trials = study.trials()
    pruned = [t for t in trials if is_pruned(t)]
    sets = [t for t in trials if is_set_key(t.template)]
    assert {bad, blurry} <= {t.template for t in pruned}  # the LLM's template too
    assert all(not is_set_key(t.template) and t.metrics["images_scored"] < N for t in pruned)
    # every ensemble scored in full by score_set (whatever the k-th best), never on some rows
    assert sets and all(t.state is TrialState.COMPLETE and t.metrics["images_scored"] == N
                        and "racing" not in t.metrics for t in sets)
    assert {t.template for t in sets} <= {k for k, split in scorer.calls if split == "train"}
    assert not any(is_set_key(row[0]) for row in scorer.row_calls)
    found = [parse_set_key(t.template) for t in sets]
    members = {m for f in found if f is not None for m in f.templates}
    assert {a, b} <= members and not members & {t.template for t in pruned}  # pruned never join one
    assert study.usage.scorer_images == sum(int(t.metrics.get("images_scored", 0)) for t in trials)
    assert result.best is not None and result.best.state is TrialState.COMPLETE
