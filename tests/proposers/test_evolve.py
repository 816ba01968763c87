"""evolve (ProAPO-style): one library request, children built only from library phrases by the
named operators, parents chosen by the entropy-constrained fitness, the budget, bad replies and
resume, all through a real Study with the scripted LLM and the fake scorer."""

from __future__ import annotations

from pathlib import Path

from proposer_helpers import POOL, TASK, RunMethod

from promptclimb.candidate import TrialState
from promptclimb.llm.base import ChatRequest
from promptclimb.proposers import build_method
from promptclimb.proposers.evolve import EvolveProposer, Genome, split_phrases
from promptclimb.store import RunStore
from promptclimb.study import Budget, Study
from promptclimb.testing import FakeScorer, ScriptedLLM

LIBRARY = ["a photo of a {}, a type of pet, in the wild.\na blurry picture of the {}, on a table.",
           "an image of a {}, seen up close, at night.\na sketch of a {}, in black and white."]


def _library_reply(request: ChatRequest) -> str:
    return "\n".join(LIBRARY)


def test_phrases_split_at_commas_around_the_slot() -> None:
    assert split_phrases("a photo of a {}, a type of pet, in the wild.") == \
        Genome("a photo of a {}", ("a type of pet", "in the wild"))
    assert split_phrases("a bad photo, of a {}.") == Genome("a bad photo, of a {}", ())
    assert split_phrases("no slot here") is None
    assert Genome("a photo of a {}", ("on a table",)).render() == "a photo of a {}, on a table."


def test_one_library_request_and_every_child_is_made_of_library_phrases(run_method: RunMethod) -> None:
    run = run_method("evolve", {"library_samples": 4}, _library_reply, budget=Budget(scorer_queries=60))
    assert len(run.requests) == 1 and run.requests[0].n == 4 and run.requests[0].shape == "template_line"
    heads, tails = set(), set()
    for text in [*POOL, *LIBRARY[0].splitlines(), *LIBRARY[1].splitlines()]:
        g = split_phrases(text)
        assert g is not None
        heads.add(g.head)
        tails.update(g.tails)
    children = [s.trial for s in run.stored if s.key.startswith("evo/")]
    assert len(children) == 40 and run.result.stopped_by == "scorer_queries=60"
    for t in children:
        g = split_phrases(t.template or "")
        assert g is not None and g.head in heads and set(g.tails) <= tails, t.template
        assert len(g.tails) <= 3
    # a shuffled generation: a budget-cut run has sampled several operators (the pool has no tails to
    # delete yet, nor to cross), never one template twice
    assert {t.raw.split(":")[0] for t in children} == {"add", "replace", "mutation"}
    trains = run.scored_train()
    assert len(trains) == len(set(trains)) == 60


def _pool_file(tmp_path: Path, lines: list[str]) -> dict[str, object]:
    path = tmp_path / "pool.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"source": "file", "path": str(path)}


# On the fake scorer the first two tie on accuracy (72.5%) and the second has the lower
# cross-entropy: accuracy alone breeds from the first (earlier trial), the fitness from the second.
TIED = ["a blurry photo of the {}.", "a vivid picture of the {}.", "a vivid sketch of the {}."]


def test_parents_are_the_best_by_fitness_with_its_cross_entropy_term(run_method: RunMethod, tmp_path: Path) -> None:
    scorer = FakeScorer()
    a, b = (scorer.score(t) for t in TIED[:2])
    assert a.value == b.value and b.metrics["cross_entropy"] < a.metrics["cross_entropy"]
    opts = {"top_k": 1, "n_add": 3, "n_delete": 0, "n_replace": 3, "n_mutation": 0, "n_crossover": 0,
            "generations": 1, "pool": _pool_file(tmp_path, TIED)}
    for ce_weight, parent in ((0.0, TIED[0]), (10.0, TIED[1])):
        run = run_method("evolve", {**opts, "ce_weight": ce_weight}, _library_reply)
        head = split_phrases(parent)
        assert head is not None
        children = [s.trial.template or "" for s in run.stored if s.key.startswith("evo/")]
        assert len(children) == 6
        for child in children:  # one edit of the parent: a tail added, or its head replaced
            g = split_phrases(child)
            assert g is not None
            assert (g.head == head.head and len(g.tails) == 1) or (g.head != head.head and not g.tails), child
        assert any(c.startswith(head.head + ", ") for c in children)  # an add child of this parent


def test_every_operator_runs_over_generations(run_method: RunMethod, tmp_path: Path) -> None:
    pool = _pool_file(tmp_path, ["a photo of a {}, on a table.", "a sketch of the {}, in the wild.",
                                 "a picture of a {}, a type of pet, at night."])
    opts = {"top_k": 2, "n_add": 2, "n_delete": 2, "n_replace": 2, "n_mutation": 2, "n_crossover": 2,
            "generations": 4, "pool": pool}
    run = run_method("evolve", opts, _library_reply)
    ops = [s.trial.raw.split(":")[0] for s in run.stored if s.key.startswith("evo/g")]
    assert set(ops) == {"add", "delete", "replace", "mutation", "crossover"}
    assert {s.key.split("/")[1] for s in run.stored if s.key.startswith("evo/g")} == {"g0", "g1", "g2", "g3"}


def test_the_fitness_falls_back_to_accuracy_without_cross_entropy() -> None:
    from promptclimb.candidate import Trial

    p = EvolveProposer()
    assert p.fitness(Trial(0, TrialState.COMPLETE, "{}", train_score=0.5, metrics={"cross_entropy": 0.2})) == \
        10 * 0.5 - 10 * 0.2
    assert p.fitness(Trial(0, TrialState.COMPLETE, "{}", train_score=0.5)) == 5.0


def test_a_library_reply_with_no_template_is_a_failed_trial_and_the_pool_phrases_carry_on(
        run_method: RunMethod, tmp_path: Path) -> None:
    pool = _pool_file(tmp_path, ["a photo of a {}, on a table.", "a sketch of the {}, in the wild.", "{}"])
    run = run_method("evolve", {"generations": 1, "pool": pool}, ["I cannot help with that."])
    failed = run.by_key("evo/library/failed")
    assert failed.state is TrialState.FAILED and "no reply held a template" in (failed.error or "")
    children = [s.trial.template for s in run.stored if s.key.startswith("evo/g0/")]
    assert "a sketch of the {}, on a table." in children and "a photo of a {}." in children


def test_a_resumed_run_rescores_nothing(tmp_path: Path) -> None:
    def study(scorer: FakeScorer, budget: int) -> Study:
        return Study(store=RunStore.open(tmp_path / "r") if (tmp_path / "r").exists() else
                     RunStore.create(tmp_path / "r", {}), proposer=build_method("evolve", {}), scorer=scorer,
                     task=TASK, llm=ScriptedLLM(_library_reply), seed=3, budget=Budget(scorer_queries=budget))

    first = study(FakeScorer(), 35)
    first.optimize()
    before = [t.template for t in first.trials()]
    again = FakeScorer()
    second = study(again, 45)
    second.optimize()
    after = [t.template for t in second.trials()]
    assert after[: len(before)] == before and len(after) == 45
    assert set(before).isdisjoint(t for t, _ in again.calls)  # nothing scored twice
    # the same as one run straight to 45
    (tmp_path / "r").rename(tmp_path / "kept")
    straight = study(FakeScorer(), 45)
    straight.optimize()
    assert [t.template for t in straight.trials()] == after
