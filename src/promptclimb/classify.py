"""The classification run kind (the paper's few-shot CLIP task): its command `promptclimb optimize`,
how its runs resume, and the line that tells a result. Runs are built and driven by run.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from promptclimb.config import apply_sets, resolve_config
from promptclimb.kinds import print_result
from promptclimb.output import add_output_flags
from promptclimb.registry import Registry
from promptclimb.store import RunStore


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="task name (default tuxpaint)")
    p.add_argument("--scorer", help="VLM scorer (default conse)")
    p.add_argument("--llm", help="chat LLM (default llamacpp:qwen2.5-coder-1.5b)")
    p.add_argument("--method", help="proposer (default hill_climb; see `promptclimb methods`)")
    p.add_argument("--seed", type=int)
    p.add_argument("--shots", type=int, help="train images per class (default 16)")
    p.add_argument("--data-root", help="folder holding the CoOp data sets")
    p.add_argument("--cache-dir", help="feature and LLM caches (default ~/.cache/promptclimb)")
    p.add_argument("--config", type=Path, help="TOML or JSON file of RunConfig settings")
    p.add_argument("--max-queries", type=int, help="budget: scorer queries")
    p.add_argument("--max-llm-calls", type=int, help="budget: LLM calls")
    p.add_argument("--max-tokens", type=int, help="budget: LLM tokens")
    p.add_argument("--max-cost", type=float, help="budget: estimated USD")
    p.add_argument("--max-images", type=int, help="budget: images scored (train + val; racing scores fewer)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. method_options.restarts=2 or racing.minibatch=40 "
                        "(VALUE is parsed as JSON)")
    p.add_argument("--replay-only", action="store_true", default=None,
                   help="answer LLM calls from the cache only; fail on a miss")
    p.add_argument("--n-jobs", type=int, help="run restarts concurrently (remote LLMs)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    budget = {k: v for k, v in {
        "scorer_queries": args.max_queries, "llm_calls": args.max_llm_calls,
        "llm_tokens": args.max_tokens, "cost_usd": args.max_cost,
        "scorer_images": args.max_images}.items() if v is not None}
    out: dict[str, Any] = {
        "task": args.task, "scorer": args.scorer, "llm": args.llm, "method": args.method,
        "seed": args.seed, "shots": args.shots, "data_root": args.data_root,
        "cache_dir": args.cache_dir, "replay_only": args.replay_only, "n_jobs": args.n_jobs,
        "budget": budget or None,
    }
    apply_sets(out, args.set)
    return out


def cmd_optimize(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.report.console import ConsoleProgress
    from promptclimb.run import start_run

    config = resolve_config(args.config, _overrides(args))
    out = Path(args.out)
    if not args.quiet:
        console.print(f"[bold]promptclimb[/] {config.method} on {config.task} · scorer {config.scorer} "
                      f"· llm {config.llm} · seed {config.seed} → {out}", highlight=False)
    result = start_run(config, out, [] if args.quiet else [ConsoleProgress(console)])
    return print_result(console, KIND, out, result)


def cmd_resume(args: argparse.Namespace, console: Console, n: int) -> int:
    from promptclimb.report.console import ConsoleProgress
    from promptclimb.run import resume_run

    out = Path(args.dir)
    changes = {k: v for k, v in {"n_jobs": args.n_jobs, "replay_only": args.replay_only}.items()
               if v is not None}
    if not args.quiet:
        console.print(f"resuming {out}: {n} trials recorded; replaying them without rescoring")
    result = resume_run(out, [] if args.quiet else [ConsoleProgress(console)], **changes)
    return print_result(console, KIND, out, result)


class Classification:
    name = "classification"
    nothing_found = "no template could be scored"

    def add_commands(self, sub: Any) -> None:
        p = sub.add_parser("optimize", help="start a run")
        _add_run_flags(p)
        p.add_argument("--out", required=True, help="run directory (created; must not hold a run)")
        add_output_flags(p)
        p.set_defaults(func=cmd_optimize)

    def finished_line(self, out: Path, n: int) -> str:
        return f"{out} is already finished ({n} trials); see `promptclimb show {out}`"

    def resume(self, args: argparse.Namespace, console: Console, n: int) -> int:
        return cmd_resume(args, console, n)

    def result_lines(self, result: Any, out: Path) -> list[str]:
        from promptclimb.prompt_set import short_form
        from promptclimb.proposers.base import format_score

        test = f", test {format_score(result.test_score.value)}" if result.test_score else ""
        stop = f" (stopped by budget {result.stopped_by})" if result.stopped_by else ""
        best = short_form(result.best.template)
        return [f"[bold green]best[/] {best!r}: train {format_score(result.best.train_score)}{test}{stop}",
                f"details: promptclimb show {out}   report: promptclimb report {out}"]

    def report_section(self, store: RunStore, run_dir: Path) -> str:
        return ""  # the common report is the classification report

    def summary(self, store: RunStore) -> dict[str, Any]:
        return {}

    def registries(self) -> list[Registry[Any]]:
        from promptclimb.llm import LLMS
        from promptclimb.proposers import METHODS
        from promptclimb.tasks import TASKS
        from promptclimb.vlm import SCORERS

        return [METHODS, TASKS, SCORERS, LLMS]


KIND = Classification()


def kind(arg: str = "") -> Classification:
    return KIND
