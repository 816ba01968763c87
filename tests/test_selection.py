from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.candidate import Trial, TrialState
from promptclimb.cli import main
from promptclimb.config import RunConfig
from promptclimb.run import build_parts
from promptclimb.selection import (
    BestTrainSelector,
    BestValOfTopSelector,
    BestValSelector,
    BootstrapSelector,
    MarginSelector,
    build_selector,
    sign_test_z,
    unpack_items,
)
from promptclimb.store import RunStore
from promptclimb.summary import run_summary
from promptclimb.vlm.base import score_prompt


def _t(n: int, template: str, train: float, *, val: float | None = None, margin: float | None = None,
       items: str | None = None, state: TrialState = TrialState.COMPLETE, exchange: int | None = None) -> Trial:
    metrics: dict[str, object] = {}
    if margin is not None:
        metrics["mean_margin"] = margin
    if items is not None:
        metrics["per_item"] = items
    return Trial(number=n, state=state, template=template, train_score=train, val_score=val,
                 metrics=metrics, exchange_id=exchange)


def test_best_train_tie_rule_val_then_margin_then_earlier() -> None:
    trials = [
        _t(0, "a {}", 0.80, val=0.5, margin=0.3),
        _t(1, "b {}", 0.85, val=0.4, margin=0.1),
        _t(2, "c {}", 0.85, val=0.6, margin=0.0),   # ties 1 on train, wins on val
        _t(3, "d {}", 0.85, val=0.6, margin=0.2),   # ties 2 on val, wins on margin
        _t(4, "e {}", 0.85, val=0.6, margin=0.2),   # ties 3 entirely: earlier wins
        _t(5, "f {}", 0.99, state=TrialState.FAILED),
        _t(6, "d {}", 0.99, state=TrialState.DUPLICATE),
    ]
    assert [t.number for t in BestTrainSelector().select(trials)] == [3, 4, 2, 1, 0]


def test_best_val_prefers_held_out_score_over_train() -> None:
    trials = [_t(0, "a {}", 0.9, val=0.5), _t(1, "b {}", 0.7, val=0.8), _t(2, "c {}", 0.95)]
    assert BestValSelector().select(trials)[0].number == 1
    assert BestTrainSelector().select(trials)[0].number == 2


def test_margin_breaks_the_coarse_steps_of_accuracy() -> None:
    trials = [_t(0, "a {}", 0.9, margin=0.01), _t(1, "b {}", 0.875, margin=0.20)]
    assert MarginSelector().select(trials)[0].number == 1


def test_bootstrap_dominance_and_symmetry() -> None:
    n = 100
    sup = "1" * 70 + "0" * 30
    sub1 = "1" * 65 + "0" * 35                     # correct only where sup is
    sub2 = "0" * 5 + "1" * 60 + "0" * 35           # also a subset of sup
    shares = BootstrapSelector(n_boot=300).win_shares(
        [_t(0, "sub1 {}", 0.65, items=sub1), _t(1, "sup {}", 0.70, items=sup), _t(2, "sub2 {}", 0.60, items=sub2)])
    assert shares[1] == pytest.approx(1.0, abs=0.02)  # tied only if items 65-69 are all left out
    assert shares[0] < 0.01 and shares[2] < 0.01
    twin = BootstrapSelector(n_boot=300).win_shares(
        [_t(0, "x {}", 0.5, items="10" * (n // 2)), _t(1, "y {}", 0.5, items="10" * (n // 2))])
    assert twin[0] == pytest.approx(0.5) and twin[1] == pytest.approx(0.5)


def test_bootstrap_prefers_a_broad_lead_to_a_lucky_one() -> None:
    # "lucky" beats "steady" by one image on the raw mean, but they disagree on 40 images, while
    # "steady" agrees with the bulk; the paired resamples make the one-image lead a coin flip,
    # and a near-copy of "steady" that is one image worse only ever shares a tie.
    lucky = "1" * 20 + "0" * 20 + "1" * 41 + "0" * 19     # 61 correct
    steady = "0" * 20 + "1" * 20 + "1" * 40 + "0" * 20    # 60 correct
    near = "0" * 20 + "1" * 20 + "1" * 39 + "0" * 21      # 59 correct, subset of steady
    trials = [_t(0, "lucky {}", 0.61, items=lucky), _t(1, "steady {}", 0.60, items=steady),
              _t(2, "near {}", 0.59, items=near)]
    shares = BootstrapSelector(n_boot=2000).win_shares(trials)
    assert shares[2] < 0.2 < shares[1]
    assert 0.4 < shares[0] < 0.65 and 0.25 < shares[1] < 0.6  # no confident winner
    assert BestTrainSelector().select(trials)[0].number == 0


def test_unpack_items_and_unknown_rule() -> None:
    assert unpack_items("1011").tolist() == [1.0, 0.0, 1.0, 1.0]  # type: ignore[union-attr]
    assert unpack_items([0.5, -0.1]).tolist() == [0.5, -0.1]  # type: ignore[union-attr]
    assert unpack_items(None) is None
    known = "known: best_train, best_train_ce, best_train_sig, best_val, best_val_top10, bootstrap, margin"
    with pytest.raises(ValueError, match=known):
        build_selector("oracle")


def test_cross_entropy_breaks_train_ties_before_val_and_old_trials_rank_last() -> None:
    def ce(n: int, template: str, train: float, value: float | None, val: float | None = None) -> Trial:
        metrics = {} if value is None else {"cross_entropy": value}
        return Trial(number=n, state=TrialState.COMPLETE, template=template, train_score=train,
                     val_score=val, metrics=metrics)

    trials = [ce(0, "a {}", 0.80, 0.1), ce(1, "b {}", 0.85, 1.2, val=0.9), ce(2, "c {}", 0.85, 0.7),
              ce(3, "d {}", 0.85, None, val=0.99)]
    assert [t.number for t in build_selector("best_train_ce").select(trials)] == [2, 1, 3, 0]
    assert BestTrainSelector().select(trials)[0].number == 3  # the paper's rule goes by val


def test_sign_test_counts_wins_and_losses_over_disagreements() -> None:
    pick, pool = unpack_items("1111011000"), unpack_items("0000111000")
    assert pick is not None and pool is not None
    assert sign_test_z(pick, pool) == pytest.approx((4 - 1) / 5 ** 0.5)  # 4 wins, 1 loss, 5 disagree
    assert sign_test_z(pool, pool) == 0.0


def test_best_train_sig_keeps_the_pool_best_unless_the_lead_is_significant() -> None:
    pool = [_t(0, "a {}", 0.5, items="1111100000"), _t(1, "b {}", 0.4, items="1111000000")]
    narrow = _t(2, "c {}", 0.7, items="1111111000", exchange=7)  # 2 wins, 0 losses: z = 1.41
    rule = build_selector("best_train_sig")
    assert [t.number for t in rule.select([*pool, narrow])] == [0, 2, 1]
    assert BestTrainSelector().select([*pool, narrow])[0].number == 2  # the paper's rule takes the lead
    clear = _t(3, "d {}", 0.9, items="1111111110", exchange=8)  # 4 wins, 0 losses: z = 2
    assert [t.number for t in rule.select([*pool, narrow, clear])] == [3, 2, 0, 1]
    mixed = _t(4, "e {}", 0.9, items="0111111111", exchange=9)  # 5 wins, 1 loss: z = 1.63
    assert rule.select([*pool, mixed])[0].number == 0
    unknown = _t(5, "f {}", 0.9, exchange=10)  # no per-image outcomes: the paper's rule
    assert rule.select([*pool, unknown])[0].number == 5
    assert rule.select([narrow])[0].number == 2  # no pool (ask/tell callers): the paper's rule


def test_best_val_top10_keeps_the_best_on_val_among_the_top_on_train_only() -> None:
    trials = [_t(i, f"t{i} {{}}", 0.9 - 0.01 * i, val=0.5) for i in range(12)]
    trials[3] = trials[3].with_(val_score=0.7)   # 4th on train, best on val among the top 3
    trials[11] = trials[11].with_(val_score=0.99)  # best on val, but 12th on train: out of reach
    trials[1] = trials[1].with_(val_score=0.7)   # ties 3 on val: the earlier on train wins
    ranked = BestValOfTopSelector(top=10).select(trials)
    assert [t.number for t in ranked[:3]] == [1, 3, 0]
    assert [t.number for t in ranked[10:]] == [10, 11]
    # trials still without a val score keep their train rank, after those with one
    unscored = [t.with_(val_score=None) if t.number == 1 else t for t in trials]
    assert BestValOfTopSelector(top=10).select(unscored)[0].number == 3
    assert [t.number for t in BestValOfTopSelector(top=10).needs_val(unscored)] == [1]  # 11 is out of reach
    assert build_selector("best_val_top10").name == "best_val_top10"


@pytest.mark.skipif(not Path("/usr/share/tuxpaint/stamps").is_dir(),
                    reason="needs Debian's tuxpaint-stamps-default (scripts/install.sh)")
def test_best_val_top10_runs_for_real_on_tuxpaint_with_conse(tmp_path: Path) -> None:
    """The rule through the CLI with the embedded ConSE scorer: the pool's 10 best on train get a
    val score (10 queries beyond the pool's 20), and the pick is the best of them on val."""
    out = tmp_path / "run"
    assert main(["optimize", "--task", "tuxpaint", "--scorer", "conse", "--method", "best_of_pool", "--seed", "3",
                 "--shots", "4", "--set", "selection=best_val_top10", "--cache-dir", str(tmp_path / "cache"),
                 "--quiet", "--out", str(out)]) == 0
    store = RunStore.open(out)
    trials = store.trials()
    top = BestTrainSelector().select(trials)[:10]
    assert all(t.val_score is not None for t in top)
    assert sum(t.val_score is not None for t in trials) == 10
    summary = run_summary(store)
    assert summary["scorer_queries"] == 30
    best_val = max(t.val_score or 0.0 for t in top)
    assert summary["final_val_score"] == best_val
    scorer = build_parts(RunConfig.model_validate(store.config)).scorer
    assert score_prompt(scorer, summary["best_template"], "val").value == best_val
