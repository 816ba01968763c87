"""The `promptclimb` command: optimize, resume, show, export, report, bench, dashboard, methods.

Errors a user can fix (bad config, missing data, unknown names, unusable stores, unreachable
endpoints) end as one line on stderr and exit status 2; an endpoint that goes down mid-run
(study.py's stopping rule) ends with one line and status 3, the run resumable; Ctrl-C says how
to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from promptclimb.config import ConfigError
from promptclimb.output import add_output_flags

EXIT_USAGE = 2
EXIT_ENDPOINT = 3
EXIT_INTERRUPTED = 130


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the user; anything else is a bug and traces."""
    from promptclimb.llm.base import LLMConfigError, LLMError
    from promptclimb.registry import UnknownNameError
    from promptclimb.store import StoreError
    from promptclimb.vlm.base import ScorerConfigError

    return (ConfigError, UnknownNameError, StoreError, LLMConfigError, LLMError, ScorerConfigError,
            ValueError, FileNotFoundError, PermissionError)


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.kinds import kind_of
    from promptclimb.store import RunStore

    out = Path(args.dir)
    store = RunStore.open(out)
    config, done, n = store.config, store.finished, len(store.trials())
    store.close()
    kind = kind_of(config)
    if done:
        console.print(kind.finished_line(out, n))
        return 0
    return kind.resume(args, console, n)


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.kinds import kind_of
    from promptclimb.references import reference_line
    from promptclimb.report.console import best_table, history_table, summary_table
    from promptclimb.store import RunStore
    from promptclimb.summary import run_summary

    store = RunStore.open(Path(args.dir))
    summary = {**run_summary(store), **kind_of(store.config).summary(store)}
    if args.json:
        print(json.dumps(summary))
        return 0
    trials = store.trials()
    shown = {k: v for k, v in summary.items() if k not in ("references", "best_prompt_set", "best_short")}
    if summary.get("best_short"):  # a prompt set in its short form (--json and export give it in full)
        shown["best_template"] = summary["best_short"]
    console.print(summary_table(shown))
    line = reference_line(summary)
    if line:
        console.print(line, highlight=False)
    console.print(best_table(trials, args.top))
    if not args.no_history:
        console.print(history_table(trials))
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.export import export_run
    from promptclimb.store import RunStore

    run = Path(args.dir)
    paths = export_run(RunStore.open(run), Path(args.to) if args.to else run / "export", args.top)
    for p in paths:
        console.print(str(p), highlight=False)
    return 0


def cmd_methods(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.kinds import all_kinds

    for reg in (reg for kind in all_kinds() for reg in kind.registries()):
        console.print(f"[bold]{reg.kind}s[/]")
        for name in reg.names():
            console.print(f"  {name:<20} {reg.help.get(name, '')}", highlight=False, soft_wrap=True)
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.run_report import write_run_report

    path = write_run_report(Path(args.dir), Path(args.out) if args.out else None)
    console.print(f"wrote {path}", highlight=False)
    return 0


def _csv(value: str | None, kind: type = str) -> list[Any] | None:
    return None if value is None else [kind(v.strip()) for v in value.split(",") if v.strip()]


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.bench.curves import grid_curves
    from promptclimb.bench.grid import cells, load_spec
    from promptclimb.bench.report import write_grid_report
    from promptclimb.bench.runner import InProcessExecutor, ProcessExecutor, RayExecutor, run_grid
    from promptclimb.bench.tables import write_tables

    spec = load_spec(args.config, {
        "tasks": _csv(args.tasks), "shots": _csv(args.shots, int), "seeds": _csv(args.seeds, int),
        "methods": args.methods.split("|") if args.methods else None, "scorers": _csv(args.scorers),
        "references": args.references.split("|") if args.references else None,
        "llm": args.llm, "budget": args.budget, "cache_dir": args.cache_dir, "data_root": args.data_root,
    })
    targets = _csv(args.transfer_to)
    if targets is not None:
        from promptclimb.bench.transfer import check_targets

        check_targets(spec, targets)
    out = Path(args.out)
    executor: Any
    if args.ray is not None:
        executor = RayExecutor(args.ray or None)
    elif args.workers > 1:
        executor = ProcessExecutor(args.workers)
    else:
        executor = InProcessExecutor()
    total = len(cells(spec))
    if not args.quiet:
        console.print(f"[bold]bench[/] {total} cells → {out}", highlight=False)

    def progress(i: int, n: int, result: dict[str, Any]) -> None:
        if not args.quiet:
            console.print(f"[{i}/{n}] {result['status']:<8} {result['seconds']:>7.1f}s  {result['cell']}",
                          highlight=False)
        for warning in result.get("warnings", ()):
            print(f"promptclimb: warning: {result['cell']}: {warning}", file=sys.stderr)

    results = run_grid(spec, out, executor, progress)
    tables = write_tables(spec, out)
    if args.selection_study:
        from promptclimb.bench.selection_study import selection_study

        study_md = selection_study(spec, out, tuple(args.selection_study.split("|")))
        (out / "selection_study.md").write_text(study_md + "\n", encoding="utf-8")
        tables["markdown"] += "\n### Selection rules (test accuracy of each rule's pick)\n\n" + study_md + "\n"
    if targets is not None:
        _bench_transfer(spec, out, targets, tables, console)
    curves = grid_curves(spec, out)
    report = write_grid_report(spec, out, tables, curves)
    if not args.quiet:
        console.print(tables["markdown"], highlight=False, markup=False, soft_wrap=True)
    console.print(f"tables: {out / 'tables.md'}  report: {report}", highlight=False, soft_wrap=True)
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        print(f"promptclimb: error: {len(failed)} of {total} cells failed (first: {failed[0]['cell']}: "
              f"{failed[0]['error']}); they are not in the tables: rerun the same command to resume them",
              file=sys.stderr)
        return EXIT_ENDPOINT
    return 0


def _bench_transfer(spec: Any, out: Path, targets: list[str], tables: dict[str, Any], console: Console) -> None:
    """Score the cells' chosen templates on other backbones; add the tables to tables.md and the report."""
    from promptclimb.bench.transfer import write_transfer

    transfer = write_transfer(spec, out, targets)
    tables["tables"].update(transfer["tables"])
    tables["markdown"] += "\n" + transfer["markdown"]
    with (out / "tables.md").open("a", encoding="utf-8") as f:
        f.write("\n" + transfer["markdown"])
    cost = transfer["cost"]
    console.print(f"transfer: {cost['evaluated']} new evaluations for {cost['cells']} cells in "
                  f"{cost['seconds']:.1f}s → {out / 'transfer.md'}", highlight=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptclimb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    from promptclimb.kinds import all_kinds

    for kind in all_kinds():  # optimize; generate, invert, personalize
        kind.add_commands(sub)
    p = sub.add_parser("resume", help="continue an interrupted run")
    p.add_argument("dir")
    p.add_argument("--n-jobs", type=int)
    p.add_argument("--replay-only", action="store_true", default=None)
    add_output_flags(p)
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("show", help="best templates and history of a run")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true", help="one JSON object of the run's figures")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--no-history", action="store_true")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("export", help="trials as CSV/JSON, best templates as a text file")
    p.add_argument("dir")
    p.add_argument("--to", help="output folder (default DIR/export)")
    p.add_argument("--top", type=int, default=5, help="templates in best_templates.txt")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("report", help="write a run's static HTML report")
    p.add_argument("dir")
    p.add_argument("--out", help="HTML file (default DIR/report.html)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("bench", help="run a grid of data sets x shots x seeds x methods x scorers")
    p.add_argument("--config", type=Path, help="TOML or JSON grid spec (fields of GridSpec)")
    p.add_argument("--tasks", help="comma-separated, e.g. tuxpaint,fashion-mnist")
    p.add_argument("--shots", help="comma-separated, e.g. 1,16")
    p.add_argument("--seeds", help="comma-separated, e.g. 1,2,3")
    p.add_argument("--methods", help="'|'-separated (fixed templates hold commas), e.g. hill_climb|best_of_pool")
    p.add_argument("--scorers", help="comma-separated scorer backbones")
    p.add_argument("--llm")
    p.add_argument("--budget", type=int, help="scorer queries per cell (the same for every method)")
    p.add_argument("--cache-dir")
    p.add_argument("--data-root")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default: this process)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run cells as Ray tasks: a local Ray, or the cluster at ADDRESS")
    p.add_argument("--references", metavar="METHODS",
                   help="paired tables: each of these methods minus every other ('|'-separated; "
                        "default hill_climb)")
    p.add_argument("--selection-study", metavar="METHODS",
                   help="also compare selection rules on these methods' cells ('|'-separated)")
    p.add_argument("--transfer-to", metavar="SCORERS",
                   help="also score each cell's chosen template with these scorers (comma-separated), "
                        "e.g. conse:lite2; writes transfer.md")
    p.add_argument("--out", required=True, help="grid directory; rerunning skips finished cells")
    add_output_flags(p)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("methods", help="list methods, tasks, scorers and LLMs")
    p.set_defaults(func=cmd_methods)
    from promptclimb.dashboard import add_command as add_dashboard_command

    add_dashboard_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    console = Console(highlight=False)
    args = build_parser().parse_args(argv)
    from promptclimb import output

    output.configure(None if getattr(args, "quiet", False) else console, verbose=getattr(args, "verbose", False))
    errors = _user_errors()
    from promptclimb.llm.base import EndpointDown

    try:
        return int(args.func(args, console))
    except EndpointDown as err:
        print(f"promptclimb: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ENDPOINT
    except KeyboardInterrupt:
        where = getattr(args, "out", None) or getattr(args, "dir", None)
        hint = f"; continue with `promptclimb resume {where}`" if where else ""
        print(f"promptclimb: interrupted: everything scored so far is saved{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as err:
        if os.environ.get("PROMPTCLIMB_DEBUG"):
            raise
        print(f"promptclimb: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
