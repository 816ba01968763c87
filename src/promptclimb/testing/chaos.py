"""The chaos suite: real runs (``promptclimb optimize`` in subprocesses) against the chat server on
127.0.0.1 answering with a random fault mix at a fixed seed, each run SIGKILLed at random points
several times and resumed until it finishes; then the store is checked against an uninterrupted
run with the same seed and replies. Bounded in runs, kills and time.

    python -m promptclimb.testing.chaos        # prints the figures (the last line is JSON)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptclimb.store import STORE_FILE, RunStore
from promptclimb.testing.chat_server import ChatServer, hashed_replies

WORDS = ("bright", "dark", "small", "large", "blurry", "sharp", "vintage", "modern", "clean", "dirty", "quiet",
         "noisy", "tiny", "faded", "vivid", "grainy", "crisp", "soft", "bold", "pale", "warm", "cold")
TEMPLATES = [f"a {w} photo of the {{}}." for w in WORDS] + [f"the {{}}, {w} and {v}." for w, v in
                                                             zip(WORDS, reversed(WORDS), strict=True)]
# Per request; the rest (about 60 %) are answered normally. Each is retried by the client, so a
# run under MIX must end as an uninterrupted run does, unless a call fails all its attempts.
MIX = {"429": 0.04, "429_bare": 0.03, "500": 0.04, "502": 0.03, "503": 0.04, "slow": 0.03, "reset": 0.04,
       "cut": 0.04, "cut_utf8": 0.03, "invalid_json": 0.02, "html": 0.04, "null_content": 0.03,
       "empty_choices": 0.03}
# Plus 1 MB replies: a real answer that enters the conversation, so only the invariants hold.
HOSTILE = {**MIX, "huge": 0.05}
MIXES = {"mix": MIX, "hostile": HOSTILE}


@dataclass(frozen=True)
class ChaosSettings:
    # (n_jobs, seed, fault mix)
    runs: tuple[tuple[int, int, str], ...] = ((1, 1, "mix"), (1, 3, "mix"), (8, 2, "mix"), (8, 4, "hostile"),
                                              (1, 5, "hostile"))
    kills: int = 3  # SIGKILLs per run
    seed: int = 18  # fault mix and kill points
    max_processes: int = 12  # per run: a bound on optimize + resumes
    run_timeout_s: float = 240.0


@dataclass
class ChaosReport:
    runs: int = 0
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    resumes: int = 0
    endpoint_stops: int = 0
    trials: int = 0
    lost: int = 0
    duplicated: int = 0
    rescored_after_kill: int = 0
    compared: int = 0  # runs the mix allows to equal the uninterrupted run
    equal: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k not in ("faults", "problems")},
                "faults": dict(sorted(self.faults.items())), "problems": len(self.problems)}


def run_args(url: str, seed: int, n_jobs: int, cache: Path, log: Path) -> list[str]:
    return ["--task", "demo", "--scorer", "fake", "--llm", "openai:test-model", "--method", "hill_climb",
            "--seed", str(seed), "--n-jobs", str(n_jobs), "--cache-dir", str(cache),
            "--set", f'llm_options.base_url="{url}"', "--set", 'llm_options.api_key_env=""',
            "--set", "llm_options.max_retries=10", "--set", "llm_options.timeout=0.5",
            "--set", "llm_options.retry_delay=0.05", "--set", "scorer_options.delay_s=0.02",
            "--set", f'scorer_options.log_path="{log}"', "--set", "method_options.restarts=8",
            "--set", "method_options.resets=1", "--set", "method_options.iterations=3"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptclimb.cli", *args]


def count_trials(run: Path) -> int:
    """Trials recorded so far, read while another process writes (0 before the store exists)."""
    try:
        with sqlite3.connect(f"file:{run / STORE_FILE}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return 0


def _killed_and_resumed(args: list[str], run: Path, s: ChaosSettings, rng: random.Random,
                        report: ChaosReport) -> None:
    """optimize, SIGKILL after fresh progress (s.kills times), resume until it exits 0."""
    deadline, kills = time.time() + s.run_timeout_s, 0
    for n in range(s.max_processes):
        argv = _cli("resume", str(run)) if (run / STORE_FILE).exists() else _cli(*args)
        report.resumes += argv[3] == "resume"
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < s.kills:
            start = count_trials(run)
            while proc.poll() is None and count_trials(run) <= start and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                kills += 1
                continue
        _, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
        if proc.returncode == 0:
            report.kills += kills
            return
        if proc.returncode == 3:  # the stopping rule: endpoint down; resume as a user would
            report.endpoint_stops += 1
            continue
        report.problems.append(f"{run.name}: process {n} exited {proc.returncode}: {err.strip()[-300:]}")
        return
    report.problems.append(f"{run.name}: not finished after {s.max_processes} processes")


def positions(store: RunStore) -> list[str]:
    """Every trial's position: pool/i, or restart/reset/iteration (the key without /c0 or /failed)."""
    return [st.key if st.key.startswith("pool/") else st.key.rsplit("/", 1)[0] for st in store.stored_trials()]


def outcome(store: RunStore) -> tuple[Any, ...]:
    """What a run found, position by position, and what it chose. Trial numbers, and which of
    two concurrent streams scored a shared template first (complete vs duplicate), depend on
    thread timing with n_jobs > 1, so they are left out."""
    trials = sorted((st.key, st.trial.template, st.trial.train_score, st.trial.state.value == "failed")
                    for st in store.stored_trials())
    final = store.result("final") or {}
    return tuple(trials), final.get("template"), final.get("train_score"), final.get("test_score")


def check_store(run: Path, reference: Path, report: ChaosReport, comparable: bool) -> None:
    """The invariants: every position once and none missing, every scored LLM trial has its
    exchange, usage equals the sum of the exchanges, and, where the mix allows (every call
    succeeded in the end, no huge reply), the same trials and final result as the uninterrupted run."""
    got, want = RunStore.open(run), RunStore.open(reference)
    name, pos, ref_pos = run.name, positions(got), positions(want)
    report.trials += len(pos)
    report.duplicated += len(pos) - len(set(pos))
    report.lost += len(set(ref_pos) - set(pos))
    if not got.finished:
        report.problems.append(f"{name}: not finished")
    exchanges = {e.id: e for e in got.exchanges()}
    for st in got.stored_trials():
        t = st.trial
        if not st.key.startswith("pool/") and t.state.value != "failed" and (
                t.exchange_id not in exchanges or exchanges[t.exchange_id].reply is None):
            report.problems.append(f"{name}: trial {t.number} has no recorded reply")
    usage = got.result("usage") or {}
    calls, tokens = len(exchanges), sum(e.prompt_tokens + e.completion_tokens for e in exchanges.values())
    if (usage.get("llm_calls"), usage.get("llm_tokens")) != (calls, tokens):
        report.problems.append(f"{name}: usage {usage} != exchanges ({calls} calls, {tokens} tokens)")
    queries = sum(int(t.metrics.get("queries", 0)) for t in got.trials())
    if usage.get("scorer_queries") != queries:
        report.problems.append(f"{name}: scorer_queries {usage.get('scorer_queries')} != trials' {queries}")
    if comparable and not any((t.error or "").startswith("endpoint error") for t in got.trials()):
        report.compared += 1
        if outcome(got) == outcome(want):
            report.equal += 1
        else:
            report.problems.append(f"{name}: differs from the uninterrupted run")
    got.close()
    want.close()


def run_chaos(settings: ChaosSettings | None = None, workdir: Path | None = None) -> ChaosReport:
    s, report, started = settings or ChaosSettings(), ChaosReport(), time.time()
    rng = random.Random(s.seed)
    work = workdir or Path(tempfile.mkdtemp(prefix="promptclimb-chaos-"))
    replies = hashed_replies(TEMPLATES)
    from promptclimb.cli import main

    with ChatServer(replies, seed=s.seed, slow_s=1.0, retry_after=0.05) as chaos, \
            ChatServer(replies) as clean:
        for n_jobs, seed, mix in s.runs:
            tag, chaos.mix = f"jobs{n_jobs}-seed{seed}-{mix}", MIXES[mix]
            reference, run = work / f"{tag}-reference", work / tag
            ref_args = run_args(clean.url, seed, n_jobs, work / f"{tag}-cache-ref", work / f"{tag}-ref.log")
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(["optimize", *ref_args, "--out", str(reference)])
            if code != 0:
                report.problems.append(f"{tag}: the uninterrupted run failed")
                continue
            log = work / f"{tag}.log"
            _killed_and_resumed(["optimize", *run_args(chaos.url, seed, n_jobs, work / f"{tag}-cache", log),
                                 "--out", str(run)], run, s, rng, report)
            if (run / STORE_FILE).exists():
                # With n_jobs > 1 which stream scores a shared template first (and so is told
                # "complete" or "duplicate") depends on thread timing: two uninterrupted runs differ.
                check_store(run, reference, report, comparable=mix == "mix" and n_jobs == 1)
            scored = [line for line in log.read_text().splitlines() if line.startswith("train")]
            report.rescored_after_kill += len(scored) - len(set(scored))
            report.runs += 1
        report.requests = len(chaos.requests)
        report.faults = Counter({k: v for k, v in chaos.fault_counts.items() if k != "ok"})
    report.seconds = round(time.time() - started, 1)
    return report


def print_figures(report: ChaosReport) -> None:
    f = report.figures()
    faults = ", ".join(f"{k} {v}" for k, v in f["faults"].items())
    print(f"chaos: {f['runs']} runs, {f['requests']} requests, {sum(report.faults.values())} faults ({faults})")
    print(f"chaos: {f['kills']} kills, {f['resumes']} resumes, {f['endpoint_stops']} endpoint stops, "
          f"{f['trials']} trials, lost {f['lost']}, duplicated {f['duplicated']}, "
          f"rescored after a kill {f['rescored_after_kill']}")
    print(f"chaos: equal to the uninterrupted run: {f['equal']} of {f['compared']} runs the mix allows; "
          f"{len(report.problems)} problems, {f['seconds']} s")
    for p in report.problems:
        print(f"chaos: problem: {p}")
    print(json.dumps(f))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print_figures(run_chaos())
