"""Methods ``describe`` and ``hill_climb+describe`` with the scripted LLM and the fake scorer:
what they send the LLM (the description requests, the per-class feedback lines), what sets they
score, and how bad replies end (failed trials, partial descriptions), never a crash."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.llm.base import ChatRequest
from promptclimb.llm.llamacpp import REPLY_GRAMMARS, reply_grammar
from promptclimb.prompt_set import PromptSet, parse_set_key
from promptclimb.proposers import METHODS, build_method
from promptclimb.store import RunStore
from promptclimb.study import Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM

TASK = build_task("demo", shots=1, seed=1).info
NAMES = list(TASK.class_names)
START = "a photo of a {}."


def _user(request: ChatRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def _asked_classes(request: ChatRequest) -> list[str]:
    """The classes a description request asks about: its "- name" lines, or the rewrite's list."""
    text = _user(request)
    if "classified worst" in text:
        return text.rsplit("(", 1)[1].split(")", 1)[0].split(", ")
    return [line[2:] for line in text.splitlines() if line.startswith("- ")]


def describer(round_words: tuple[str, ...] = ("striking", "plain", "vivid", "dull", "bold", "soft")):
    """Replies with descriptions of every class asked, worded differently each round."""
    count = Counter[str]()

    def reply(request: ChatRequest) -> str:
        if request.shape != "class_lines":
            return "a sharp photo of the {}."
        lines = []
        for name in _asked_classes(request):
            word = round_words[count[name] % len(round_words)]
            count[name] += 1
            lines += [f"{name}: a {word} {name} seen up close", f"- {name}: a {word} {name} in the wild"]
        return "\n".join(lines)

    return reply


def _run(tmp_path: Path, method: str, options: dict, replies, name: str = "run") -> tuple[Study, ScriptedLLM]:
    llm = ScriptedLLM(replies)
    scorer = FakeScorer(class_names=NAMES)
    study = Study(store=RunStore.create(tmp_path / name, {}), proposer=build_method(method, options),
                  scorer=scorer, task=TASK, llm=llm, seed=1)
    study.optimize()
    return study, llm


def test_describe_asks_for_every_class_then_rewrites_the_worst_with_their_feedback(tmp_path: Path) -> None:
    study, llm = _run(tmp_path, "describe", {"start": START, "classes_per_request": 5, "rounds": 2,
                                             "worst_classes": 2, "descriptions": 2}, describer())
    first, second, *rewrites = llm.requests
    assert all(r.shape == "class_lines" for r in llm.requests) and len(rewrites) == 2
    assert _asked_classes(first) == NAMES[:5] and _asked_classes(second) == NAMES[5:]
    assert START in _user(first) and "2 short descriptions" in _user(first)

    stored = {s.key: s.trial for s in study.store.stored_trials()}
    init = parse_set_key(stored["desc/init"].template)
    assert init is not None and init.templates == (START,) and sorted(init.class_texts) == sorted(NAMES)
    assert init.class_texts["cat"] == ("a striking cat in the wild", "a striking cat seen up close")

    # the first rewrite is told how the worst two classes fare under the better of start and init
    base = max((stored["desc/init"], next(t for t in study.trials() if t.template == START)),
               key=lambda t: (t.train_score, t.metrics["mean_margin"]))
    labels, preds = base.metrics["labels"], base.metrics["predictions"]
    rows = []
    for c, name in enumerate(NAMES):
        mine = [i for i, label in enumerate(labels) if label == c]
        right = sum(preds[i] == c for i in mine)
        wrong = Counter(preds[i] for i in mine if preds[i] != c)
        if wrong:
            confused = min(wrong.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            rows.append((right / len(mine), -len(mine), name, f"{name}: {right} of {len(mine)} right, "
                         f"mostly taken for {NAMES[confused]}"))
    worst = sorted(rows)[:2]
    text = _user(rewrites[0])
    assert all(line in text for *_, line in worst)
    assert _asked_classes(rewrites[0]) == [name for _, _, name, _ in worst]
    r0 = parse_set_key(stored["desc/r0"].template)
    assert r0 is not None and r0.class_texts[worst[0][2]] == (f"a plain {worst[0][2]} in the wild",
                                                              f"a plain {worst[0][2]} seen up close")
    others = [n for n in NAMES if n not in (worst[0][2], worst[1][2])]
    current = parse_set_key(base.template) or PromptSet((START,))
    assert all(r0.class_texts.get(n) == current.class_texts.get(n) for n in others)  # the rest kept


@pytest.mark.parametrize("combine", ["descriptions", "product"])
def test_the_combine_mode_is_the_mode_of_every_set_it_scores(tmp_path: Path, combine: str) -> None:
    study, _ = _run(tmp_path, "describe", {"start": START, "rounds": 2, "combine": combine}, describer())
    sets = [parse_set_key(t.template) for t in study.trials() if t.template and t.template.startswith('{"')]
    assert len(sets) >= 2 and all(s is not None and s.combine == combine for s in sets)


def test_bad_replies_become_failed_trials_or_partial_sets(tmp_path: Path) -> None:
    replies = iter(["Sure! I love cats.\ndog - ", "cat: a cat with stripes\nlion: a lion", "nothing here"])
    study, _ = _run(tmp_path, "describe", {"start": START, "classes_per_request": 8, "rounds": 2},
                    lambda request: next(replies, ""))
    stored = {s.key: s.trial for s in study.store.stored_trials()}
    init = stored["desc/init"]
    assert init.state.value == "failed" and "no usable description" in (init.error or "")
    assert "names no class" in (init.error or "") or "empty description" in (init.error or "")
    r0 = parse_set_key(stored["desc/r0"].template)
    assert stored["desc/r0"].state.value == "complete"
    assert r0 is not None and dict(r0.class_texts) == {"cat": ("a cat with stripes",)}  # others: template only
    assert stored["desc/r1"].state.value == "failed"
    assert study.store.finished


def test_describe_rewrite_only_sees_the_classes_it_asked(tmp_path: Path) -> None:
    def reply(request: ChatRequest) -> str:
        return "\n".join(f"{n}: a {n} with a long tail" for n in NAMES)  # every class, asked or not

    study, llm = _run(tmp_path, "describe", {"start": START, "rounds": 1, "worst_classes": 1}, reply)
    stored = {s.key: s.trial for s in study.store.stored_trials()}
    (asked,) = _asked_classes(llm.requests[-1])
    init, start = stored["desc/init"], next(t for t in study.trials() if t.template == START)
    better = (init.train_score, init.metrics["mean_margin"]) > (start.train_score, start.metrics["mean_margin"])
    current = parse_set_key(init.template) if better else PromptSet((START,))
    assert current is not None
    expected = current.with_texts({asked: [f"{asked} with a long tail".replace(asked, f"a {asked}", 1)]})
    assert stored["desc/r0"].template == expected.key  # only the class asked changed
    assert stored["desc/r0"].state.value == ("duplicate" if better else "complete")


def test_hill_climb_then_describe_from_its_best_template(tmp_path: Path) -> None:
    fresh = iter(f"a {w} photo of the {{}}." for w in ("sunny", "rainy", "snowy", "misty", "windy", "foggy"))

    def reply(request: ChatRequest) -> str:
        return describer()(request) if request.shape == "class_lines" else next(fresh, "a dark photo of a {}.")

    options = {"restarts": 2, "resets": 1, "iterations": 2, "rounds": 1}
    study, llm = _run(tmp_path, "hill_climb+describe", options, reply)
    shapes = [r.shape for r in llm.requests]
    first_described = shapes.index("class_lines")
    assert first_described == 4 and set(shapes[first_described:]) == {"class_lines"}
    stored = study.store.stored_trials()
    climbed = [s.trial for s in stored if not s.key.startswith("desc/")]
    best = max((t for t in climbed if t.train_score is not None), key=lambda t: (t.train_score, -t.number))
    init = next(s.trial for s in stored if s.key == "desc/init")
    found = parse_set_key(init.template)
    assert found is not None and found.templates == (best.template,)
    assert f'"{best.template}"' in _user(llm.requests[first_described])
    assert [s.key.split("/")[0] for s in stored if s.trial.exchange_id is not None][:4] == ["r0", "r0", "r1", "r1"]


def test_registered_and_refused_with_a_scorer_that_cannot_embed_class_texts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"describe", "hill_climb+describe"} <= set(METHODS.names())
    from promptclimb.testing import fake_scorer

    monkeypatch.delattr(fake_scorer.FakeScorer, "score_set")
    capsys.readouterr()
    code = main(["optimize", "--task", "demo", "--scorer", "fake", "--llm", "scripted", "--method", "describe",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "describe needs a scorer that embeds per-class texts; scorer fake cannot" in err


def test_the_class_lines_shape_has_a_small_grammar() -> None:
    text = reply_grammar("class_lines")
    assert set(REPLY_GRAMMARS) == {"class_lines"}
    assert 'line ::= name ": " desc "\\n"' in text and len(text.splitlines()) < 12


def _rank(t):  # the rule describe keeps a set by: accuracy, then mean margin
    return (t.train_score, t.metrics["mean_margin"])


def _kept_after_first(study: Study, stored: dict) -> tuple:
    """The trial and set describe keeps after its first set: that set or the start template."""
    start = next(t for t in study.trials() if t.template == START)
    init = stored["desc/init"]
    kept = init if _rank(init) > _rank(start) else start  # a tie keeps the start
    return kept, parse_set_key(kept.template) or PromptSet((START,))


def test_class_select_tries_each_described_class_alone_without_asking_the_llm(tmp_path: Path) -> None:
    study, llm = _run(tmp_path, "describe", {"start": START, "rounds": 0, "class_select": True,
                                             "classes_per_request": 5}, describer())
    assert len(llm.requests) == 2  # the two requests of the first set; the class step asks nothing
    stored = {s.key: s.trial for s in study.store.stored_trials()}
    init = parse_set_key(stored["desc/init"].template)
    assert init is not None and sorted(init.class_texts) == sorted(NAMES)
    current, current_set = _kept_after_first(study, stored)
    labels, preds = current.metrics["labels"], current.metrics["predictions"]
    accuracy = {name: sum(p == c for y, p in zip(labels, preds, strict=True) if y == c) / max(1, labels.count(c))
                for c, name in enumerate(NAMES)}
    toggled = []
    for i in range(len(NAMES)):
        trial = stored[f"desc/class{i}"]
        got = parse_set_key(trial.template) or PromptSet((START,))
        changed = set(got.class_texts) ^ set(current_set.class_texts)
        assert len(changed) == 1  # one class switched on or off against the set kept so far
        (name,) = changed
        assert got.class_texts.get(name, init.class_texts[name]) == init.class_texts[name]
        toggled.append(name)
        if trial.state.value == "complete" and _rank(trial) > _rank(current):
            current, current_set = trial, got
    assert sorted(toggled) == sorted(NAMES)
    assert accuracy[toggled[0]] == min(accuracy.values())  # the worst class first
    assert sorted(k for k in stored if k.startswith("desc/")) == sorted(
        ["desc/init", *(f"desc/class{i}" for i in range(len(NAMES)))])


def test_class_gain_keeps_a_class_only_when_that_many_more_train_images_come_out_right(tmp_path: Path) -> None:
    def toggles(gain: int) -> list[int]:
        """Per class trial: how many classes its set differs in from the set kept after the first."""
        options = {"start": START, "rounds": 0, "class_select": True, "classes_per_request": 5, "class_gain": gain}
        study, _ = _run(tmp_path, "describe", options, describer(), name=f"gain{gain}")
        stored = {s.key: s.trial for s in study.store.stored_trials()}
        _, base_set = _kept_after_first(study, stored)
        return [len(set((parse_set_key(stored[f"desc/class{i}"].template) or PromptSet((START,))).class_texts)
                    ^ set(base_set.class_texts)) for i in range(len(NAMES))]

    assert toggles(1000) == [1] * len(NAMES)  # nothing can gain 1000 images: every toggle is against the base
    assert max(toggles(0)) > 1  # by accuracy then margin, some classes were kept on the way


def test_describe_select_is_describe_with_the_recipe_and_options_still_override(tmp_path: Path) -> None:
    recipe = {"combine": "descriptions", "class_select": True, "rounds": 0, "class_gain": 2}
    named, named_llm = _run(tmp_path, "describe_select", {"start": START}, describer(), name="named")
    spelled, spelled_llm = _run(tmp_path, "describe", {"start": START, **recipe}, describer(), name="spelled")
    assert "describe_select" in METHODS.names() and "class_gain=2" in METHODS.help["describe_select"]
    settings = build_method("describe_select", {}).settings
    assert {k: getattr(settings, k) for k in recipe} == recipe
    trials = [[(s.key, s.trial.template, s.trial.train_score) for s in study.store.stored_trials()]
              for study in (named, spelled)]
    assert trials[0] == trials[1] and any(key == "desc/class0" for key, _, _ in trials[0])
    assert [_user(r) for r in named_llm.requests] == [_user(r) for r in spelled_llm.requests]
    assert not any(key.startswith("desc/r") for key, _, _ in trials[0])  # rounds=0: no rewrite
    rewritten, _ = _run(tmp_path, "describe_select", {"start": START, "rounds": 1}, describer(), name="override")
    assert any(s.key == "desc/r0" for s in rewritten.store.stored_trials())
