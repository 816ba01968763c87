"""What the hill climber sends and what it does with good, bad and duplicate replies."""

from __future__ import annotations

import pytest
from proposer_helpers import FRESH, POOL, TASK, Run, RunMethod, pct, score, user_text
from pydantic import ValidationError

from promptclimb.candidate import TrialState
from promptclimb.proposers.class_feedback import class_feedback, trial_outcomes

ONE = {"restarts": 1, "resets": 1, "iterations": 1}
POSITIVE_HEAD = "Templates that work well, with their accuracy:\n"
NEGATIVE_HEAD = "Templates that work poorly, with their accuracy (avoid what they do):\n"
ASK = "Write 1 new template(s) that score higher. Reply with the template(s) only, one per line."


def _pool_best_first(run: Run) -> list[tuple[str, float]]:
    pool = run.pool()
    assert [t.template for t in pool] == POOL
    rows = [(t, score(t), n) for n, t in enumerate(POOL)]
    return [(t, s) for t, s, _ in sorted(rows, key=lambda r: (-r[1], r[2]))]


def _above(value: float) -> str:
    return next(t for t in FRESH if score(t) > value)


def _below(value: float) -> str:
    return next(t for t in FRESH if score(t) < value)


def test_opening_lists_top_and_bottom_with_scores(run_method: RunMethod) -> None:
    run = run_method("hill_climb", ONE, [FRESH[0]])
    best_first = _pool_best_first(run)
    req = run.requests[0]
    assert [m.role for m in req.messages] == ["system", "user"]
    text = user_text(req)
    positive = "".join(f"- {t} ({pct(s)})\n" for t, s in best_first[:10])
    negative = "\n".join(f"- {t} ({pct(s)})" for t, s in reversed(best_first[10:]))
    assert POSITIVE_HEAD + positive + "\n" + NEGATIVE_HEAD + negative + "\n" in text
    assert "classify everyday objects, animals and plants into 8 classes" in text
    assert req.shape == "template_line"
    assert req.completion_prompt is not None and req.completion_prompt.endswith("\n-")
    # the completion form lists the same templates worst to best
    lines = req.completion_prompt.splitlines()[1:-1]
    assert lines == [f"- {t} ({pct(s)})" for t, s in reversed(best_first)]


def test_feedback_says_up_or_down_with_the_right_scores(run_method: RunMethod) -> None:
    best = max(score(t) for t in POOL)
    up = _above(best)
    down = _below(score(up))
    run = run_method("hill_climb", {"restarts": 1, "resets": 1, "iterations": 3}, [up, down, FRESH[1]])
    assert len(run.requests) == 3
    second, third = run.requests[1], run.requests[2]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[2].content == up
    assert user_text(second) == f'"{up}" scores {pct(score(up))}, up from {pct(best)}.\n{ASK}'
    assert third.messages[4].content == down
    assert user_text(third) == f'"{down}" scores {pct(score(down))}, down from {pct(score(up))}.\n{ASK}'
    assert run.scored_train()[20:] == [up, down, FRESH[1]]


def test_positive_only_ablation_has_no_negative_list(run_method: RunMethod) -> None:
    run = run_method("hill_climb_pos", ONE, [FRESH[0]])
    best_first = _pool_best_first(run)
    text = user_text(run.requests[0])
    assert "poorly" not in text
    block = text.split(POSITIVE_HEAD, 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [f"- {t} ({pct(s)})" for t, s in best_first[:10]]
    for t, _ in best_first[10:]:
        assert f"- {t} (" not in text


def test_no_score_ablation_shows_no_percentages(run_method: RunMethod) -> None:
    run = run_method("hill_climb_noscore", {"restarts": 1, "resets": 1, "iterations": 3},
                     [FRESH[0], "a photo of a {}.", FRESH[1]])
    assert len(run.requests) >= 3
    for req in run.requests:
        assert all("%" not in m.content for m in req.messages)
        assert "%" not in (req.completion_prompt or "")
    assert user_text(run.requests[1]).startswith(f'"{FRESH[0]}" has been tried.\n')
    assert "- a photo of a {}.\n" in user_text(run.requests[0])


def test_single_turn_sends_no_assistant_turns(run_method: RunMethod) -> None:
    up = _above(max(score(t) for t in POOL))
    run = run_method("hill_climb_single", {"restarts": 1, "resets": 1, "iterations": 3},
                     [up, FRESH[1], FRESH[2]])
    assert len(run.requests) == 3
    for req in run.requests:
        assert [m.role for m in req.messages] == ["system", "user"]
    # the next request is a fresh opening whose best template is the one just scored
    assert POSITIVE_HEAD + f"- {up} ({pct(score(up))})\n" in user_text(run.requests[1])


def test_unparseable_reply_gets_corrective_retries_then_a_failed_trial(run_method: RunMethod) -> None:
    junk = ["I cannot help with that.", "Sorry, no idea.", "Still nothing."]
    run = run_method("hill_climb", ONE, junk)
    assert len(run.requests) == 3  # max_retries = 2
    last = run.requests[2]
    assert [m.role for m in last.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in last.messages if m.role == "assistant"] == junk[:2]
    corrective = user_text(last)
    assert corrective.startswith("That reply held no usable template (no {} placeholder for the class name).")
    assert user_text(run.requests[1]) == corrective
    failed = run.by_key("r0/n0/k0/failed")
    assert failed.state is TrialState.FAILED and failed.template is None
    assert failed.error == "no {} placeholder for the class name"
    assert failed.raw == junk[2]
    assert len(run.scored_train()) == 20  # the pool only


def test_retry_count_follows_max_retries(run_method: RunMethod) -> None:
    run = run_method("hill_climb", {**ONE, "max_retries": 0}, ["nothing here"])
    assert len(run.requests) == 1
    assert run.by_key("r0/n0/k0/failed").state is TrialState.FAILED


def test_duplicate_is_recorded_not_rescored_and_the_llm_is_told(run_method: RunMethod) -> None:
    dup = "a photo of a {}."
    run = run_method("hill_climb", {"restarts": 1, "resets": 1, "iterations": 2},
                     [dup, dup, dup, FRESH[0]])
    first = run.pool()[0]
    assert first.template == dup
    # asked again twice ("already tried"), then recorded as a duplicate of the pool trial
    assert user_text(run.requests[1]).startswith(f'"{dup}" was already tried ({pct(score(dup))}).')
    trial = run.by_key("r0/n0/k0/c0")
    assert trial.state is TrialState.DUPLICATE
    assert trial.duplicate_of == first.number and trial.train_score == first.train_score
    assert run.scored_train().count(dup) == 1
    told = user_text(run.requests[3])
    assert told == (f'"{dup}" was already tried: it scored {pct(score(dup))}. Do not repeat templates '
                    f"from the lists or from this conversation.\n{ASK}")
    assert run.scored_train()[-1] == FRESH[0]


def test_duplicate_without_retry_is_recorded_at_once(run_method: RunMethod) -> None:
    dup = "itap of a {}."
    run = run_method("hill_climb", {**ONE, "retry_repeats": False}, [dup])
    assert len(run.requests) == 1
    trial = run.by_key("r0/n0/k0/c0")
    assert trial.state is TrialState.DUPLICATE and trial.train_score == score(dup)
    assert run.scored_train().count(dup) == 1


def test_keys_are_deterministic_and_unique(run_method: RunMethod) -> None:
    opts = {"restarts": 2, "resets": 2, "iterations": 2}
    a = run_method("hill_climb", opts, FRESH)
    b = run_method("hill_climb", opts, FRESH)
    keys = [s.key for s in a.stored]
    assert keys == [s.key for s in b.stored] and len(set(keys)) == len(keys)
    assert [r.seed for r in a.requests] == [r.seed for r in b.requests]
    assert len({r.seed for r in a.requests}) == len(a.requests)


def test_class_feedback_names_each_templates_worst_classes(run_method: RunMethod) -> None:
    best = max(score(t) for t in POOL)
    up = _above(best)
    run = run_method("hill_climb_classes", {"restarts": 1, "resets": 1, "iterations": 2}, [up, FRESH[1]])
    names = TASK.class_names

    def lines(template: str) -> str:
        trial = next(t for t in run.trials() if t.template == template and t.state is TrialState.COMPLETE)
        outcomes = trial_outcomes(trial.metrics)
        assert outcomes is not None
        return class_feedback(*outcomes, names, 3)

    opening, turn = user_text(run.requests[0]), user_text(run.requests[1])
    top = _pool_best_first(run)[0][0]
    expected_open = (f'Where the best one, "{top}", goes wrong (class: right of its images, and what the '
                     f"wrong ones are taken for):\n{lines(top)}\n")
    assert expected_open in opening
    assert " of " in lines(top) and "right" in lines(top)  # the fake scorer gets some classes wrong
    assert user_text(run.requests[1]) == (f'"{up}" scores {pct(score(up))}, up from {pct(best)}.\n'
                                          f"Where it goes wrong:\n{lines(up)}\n{ASK}")
    # score-only feedback (the paper) sends none of it
    plain = run_method("hill_climb", {"restarts": 1, "resets": 1, "iterations": 2}, [up, FRESH[1]])
    assert "goes wrong" not in user_text(plain.requests[0]) + user_text(plain.requests[1])
    assert turn != user_text(plain.requests[1])


def test_class_feedback_is_an_option_of_hill_climb(run_method: RunMethod) -> None:
    run = run_method("hill_climb", {"restarts": 1, "resets": 1, "iterations": 1, "feedback": "classes"},
                     [FRESH[0]])
    assert "Where the best one" in user_text(run.requests[0])
    with pytest.raises(ValidationError):
        run_method("hill_climb", {"feedback": "reasons"}, [FRESH[0]])
