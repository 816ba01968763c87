"""The baselines: what each scores, what it sends, and what it does with bad and duplicate replies."""

from __future__ import annotations

import pytest
from proposer_helpers import FRESH, POOL, TASK, RunMethod, pct, score, user_text
from pydantic import ValidationError

from promptclimb.candidate import TrialState
from promptclimb.proposers import METHODS, build_method

BASELINES = ["best_of_pool", "random_pool", "fixed", "llm_no_feedback", "ape", "iterative_ape", "opro"]
# The smallest run of each LLM baseline: one request.
ONE_REQUEST = {
    "llm_no_feedback": {"proposals": 1},
    "ape": {"top_k": 1, "paraphrases": 1},
    "iterative_ape": {"rounds": 1, "top_k": 1, "paraphrases": 1},
    "opro": {"steps": 1},
}
FIRST_KEY = {"llm_no_feedback": "nofb/0", "ape": "ape/0/0/p0", "iterative_ape": "ape/0/0/p0",
             "opro": "opro/0"}


def _best_first() -> list[str]:
    return [t for _, _, t in sorted((-score(t), n, t) for n, t in enumerate(POOL))]


def test_every_baseline_is_registered_with_help() -> None:
    for name in BASELINES:
        assert name in METHODS.names() and METHODS.help[name].startswith("baseline: ")
    uses_llm = {name: build_method(name if name != "fixed" else "fixed:handwritten").uses_llm
                for name in BASELINES}
    assert uses_llm == {"best_of_pool": False, "random_pool": False, "fixed": False, "llm_no_feedback": True,
                        "ape": True, "iterative_ape": True, "opro": True}


def test_settings_document_every_count() -> None:
    for name in ["random_pool", "llm_no_feedback", "ape", "iterative_ape", "opro"]:
        fields = build_method(name).Settings.model_fields
        counts = [f for f in ("picks", "proposals", "max_examples", "top_k", "paraphrases", "rounds",
                              "steps", "max_shown") if f in fields]
        assert counts and all(fields[f].description for f in counts), name


# -- no LLM ---------------------------------------------------------------------------------
def test_best_of_pool_scores_the_pool_only(run_method: RunMethod) -> None:
    run = run_method("best_of_pool", replies=["unused {}"])
    assert run.scored_train() == POOL
    assert run.requests == []
    assert run.result.best is not None and run.result.best.template == _best_first()[0]
    assert run.result.usage.scorer_queries == 20


def test_no_llm_baselines_refuse_an_llm_pool() -> None:
    with pytest.raises(ValidationError, match="uses no LLM"):
        build_method("best_of_pool", {"pool": {"source": "llm"}})


def test_random_pool_scores_only_its_picks(run_method: RunMethod) -> None:
    run = run_method("random_pool", {"picks": 3})
    picked = run.scored_train()
    assert len(picked) == 3 and len(set(picked)) == 3 and set(picked) <= set(POOL)
    assert [s.key for s in run.stored] == [f"pool/{POOL.index(t)}" for t in picked]
    assert run_method("random_pool", {"picks": 3}).scored_train() == picked  # same seed, same picks
    one = {run_method("random_pool", seed=s).scored_train()[0] for s in range(1, 9)}
    assert len(one) > 1  # the seed decides
    assert run_method("random_pool").result.usage.scorer_queries == 1


def test_fixed_scores_the_given_templates(run_method: RunMethod) -> None:
    assert run_method("fixed:a photo of a {}.").scored_train() == ["a photo of a {}."]
    run = run_method("fixed:itap of a {}.||art of the {}.", {"templates": ["a {} in the wild."]})
    assert run.scored_train() == ["itap of a {}.", "art of the {}.", "a {} in the wild."]
    assert [s.key for s in run.stored] == ["pool/0", "pool/1", "pool/2"]
    hand = run_method("fixed:handwritten")
    assert hand.scored_train() == list(TASK.handwritten_templates)
    assert all(t.state is TrialState.COMPLETE for t in hand.trials())


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("fixed:a photo of a", {}, "exactly one {}"),
    ("fixed", {"templates": ["{} and {}"]}, "exactly one {}"),
    ("fixed", {}, "fixed needs templates"),
])
def test_fixed_rejects_bad_templates(spec: str, options: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build_method(spec, options)


def test_baselines_take_no_argument() -> None:
    with pytest.raises(ValueError, match="takes no argument"):
        build_method("opro:fast")


# -- llm_no_feedback ------------------------------------------------------------------------
def test_no_feedback_requests_are_single_turn_without_scores(run_method: RunMethod) -> None:
    run = run_method("llm_no_feedback", {"proposals": 3}, FRESH[:3])
    assert len(run.requests) == 3
    examples = "".join(f"- {t}\n" for t in POOL)
    for req in run.requests:
        assert [m.role for m in req.messages] == ["system", "user"]
        assert examples in user_text(req) + "\n"
        assert "8 classes of everyday objects, animals and plants" in user_text(req)
        assert all("%" not in m.content for m in req.messages)
        assert req.shape == "template_line"
        assert req.completion_prompt == (
            "Prompt templates for classifying everyday objects, animals and plants:\n" + examples + "-")
        assert req.messages == run.requests[0].messages  # nothing learnt between requests
    assert len({r.seed for r in run.requests}) == 3
    assert run.scored_train()[20:] == FRESH[:3]
    assert [s.key for s in run.stored[20:]] == ["nofb/0/c0", "nofb/1/c0", "nofb/2/c0"]


def test_no_feedback_shows_at_most_max_examples(run_method: RunMethod) -> None:
    run = run_method("llm_no_feedback", {"proposals": 1, "max_examples": 2}, FRESH[:1])
    text = user_text(run.requests[0])
    assert f"- {POOL[0]}\n- {POOL[1]}\n\n" in text and f"- {POOL[2]}\n" not in text


# -- APE ------------------------------------------------------------------------------------
def test_ape_paraphrases_the_best_pool_templates(run_method: RunMethod) -> None:
    run = run_method("ape", {"top_k": 2, "paraphrases": 2}, FRESH[:4])
    best, second = _best_first()[:2]
    assert len(run.requests) == 4
    sources = [user_text(r).split("Template: ", 1)[1].split("\n", 1)[0] for r in run.requests]
    assert sources == [best, best, second, second]
    for req in run.requests:
        assert [m.role for m in req.messages] == ["system", "user"]
        assert all("%" not in m.content for m in req.messages)
        assert req.shape == "template_line" and (req.completion_prompt or "").endswith("\n-")
    # the second request for a template lists the rewording already written
    assert "Rewordings already written" not in user_text(run.requests[0])
    assert f"Rewordings already written (give a different one):\n- {FRESH[0]}\n" in user_text(run.requests[1])
    assert run.requests[1].completion_prompt is not None
    assert run.requests[1].completion_prompt.endswith(f"- {best}\n- {FRESH[0]}\n-")
    assert [s.key for s in run.stored[20:]] == ["ape/0/0/p0/c0", "ape/0/0/p1/c0", "ape/0/1/p0/c0",
                                                "ape/0/1/p1/c0"]
    assert run.scored_train()[20:] == FRESH[:4]


def test_iterative_ape_paraphrases_the_current_best(run_method: RunMethod) -> None:
    up = next(t for t in FRESH if score(t) > score(_best_first()[0]))
    run = run_method("iterative_ape", {"rounds": 2, "top_k": 1, "paraphrases": 1}, [up, FRESH[1]])
    sources = [user_text(r).split("Template: ", 1)[1].split("\n", 1)[0] for r in run.requests]
    assert sources == [_best_first()[0], up]
    assert [s.key for s in run.stored[20:]] == ["ape/0/0/p0/c0", "ape/1/0/p0/c0"]


# -- OPRO -----------------------------------------------------------------------------------
def test_opro_shows_the_scored_history_ascending(run_method: RunMethod) -> None:
    up = next(t for t in FRESH if score(t) > score(_best_first()[0]))
    run = run_method("opro", {"steps": 2, "max_shown": 5}, [up, FRESH[1]])
    assert len(run.requests) == 2
    first = [f"- {t} ({pct(score(t))})" for t in reversed(_best_first()[:5])]
    text = user_text(run.requests[0])
    assert "from the lowest accuracy to the highest:\n" + "\n".join(first) + "\n\n" in text
    # the next step shows the new best last and drops the worst of the five
    second = [*first[1:], f"- {up} ({pct(score(up))})"]
    assert "\n".join(second) + "\n\n" in user_text(run.requests[1])
    for req in run.requests:
        assert [m.role for m in req.messages] == ["system", "user"]
        assert req.shape == "template_line"
    assert run.requests[1].completion_prompt is not None
    assert run.requests[1].completion_prompt.endswith("\n".join(second) + "\n-")


# -- bad and duplicate replies, for every LLM baseline --------------------------------------
@pytest.mark.parametrize("method", sorted(ONE_REQUEST))
def test_unparseable_replies_retry_then_fail(run_method: RunMethod, method: str) -> None:
    junk = ["No template here.", "Still none.", "Nope."]
    run = run_method(method, ONE_REQUEST[method], junk)
    assert len(run.requests) == 3
    last = run.requests[-1]
    assert [m.role for m in last.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in last.messages if m.role == "assistant"] == junk[:2]
    assert user_text(last).startswith("That reply held no usable template (no {} placeholder")
    failed = run.by_key(f"{FIRST_KEY[method]}/failed")
    assert failed.state is TrialState.FAILED and failed.error == "no {} placeholder for the class name"
    assert len(run.scored_train()) == 20


@pytest.mark.parametrize("method", sorted(ONE_REQUEST))
def test_duplicates_are_recorded_not_rescored_and_the_llm_is_told(run_method: RunMethod, method: str) -> None:
    dup = "a photo of a {}."
    run = run_method(method, ONE_REQUEST[method], [dup])
    assert len(run.requests) == 3
    told = user_text(run.requests[1])
    expected = f'"{dup}" was already tried ({pct(score(dup))}).' if method == "opro" else \
        f'"{dup}" was already tried. Reply'
    assert told.startswith(expected)
    if method != "opro":
        assert all("%" not in m.content for r in run.requests for m in r.messages)
    trial = run.by_key(f"{FIRST_KEY[method]}/c0")
    assert trial.state is TrialState.DUPLICATE and trial.duplicate_of == 0
    assert trial.train_score == score(dup)
    assert run.scored_train().count(dup) == 1


@pytest.mark.parametrize("method", sorted(ONE_REQUEST))
def test_duplicate_without_retry_costs_one_request(run_method: RunMethod, method: str) -> None:
    run = run_method(method, {**ONE_REQUEST[method], "retry_repeats": False}, ["itap of a {}."])
    assert len(run.requests) == 1
    assert run.by_key(f"{FIRST_KEY[method]}/c0").state is TrialState.DUPLICATE


@pytest.mark.parametrize("method", sorted(ONE_REQUEST))
def test_keys_and_seeds_are_deterministic(run_method: RunMethod, method: str) -> None:
    a, b = run_method(method, replies=FRESH), run_method(method, replies=FRESH)
    keys = [s.key for s in a.stored]
    assert keys == [s.key for s in b.stored] and len(set(keys)) == len(keys) == 50
    assert [r.seed for r in a.requests] == [r.seed for r in b.requests]
    assert len({r.seed for r in a.requests}) == len(a.requests) == 30
