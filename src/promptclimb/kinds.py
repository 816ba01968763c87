"""Run kinds as plug-ins. A kind (classification, text-to-image) brings its commands, how its runs
resume, the lines that tell its result, its section of the HTML report, its extra summary
figures and the registries `promptclimb methods` lists. The CLI, resume, show, export and report
ask the kind of a run, found by the stored config's ``kind``; nothing switches on a kind's name.

A new kind is one module with a ``kind(arg) -> RunKind`` factory and a line per stored kind name
in RUN_KINDS below.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from promptclimb.registry import Registry
from promptclimb.store import RunStore

CLASSIFY = "promptclimb.classify:kind"
T2I = "promptclimb.t2i.kind:kind"


class RunKind(Protocol):
    """What the core asks of a kind of run."""

    name: str
    nothing_found: str  # said when a run ends with nothing usable

    def add_commands(self, sub: Any) -> None:
        """Add the kind's sub-commands (e.g. optimize; generate, invert, personalize)."""

    def finished_line(self, out: Path, n: int) -> str:
        """What `promptclimb resume` says of a finished run of ``n`` trials."""

    def resume(self, args: argparse.Namespace, console: Console, n: int) -> int:
        """`promptclimb resume DIR` for an unfinished run of this kind with ``n`` trials recorded."""

    def result_lines(self, result: Any, out: Path) -> list[str]:
        """The lines (rich markup) that tell a finished run's result."""

    def report_section(self, store: RunStore, run_dir: Path) -> str:
        """The kind's own HTML section of `promptclimb report` ("" for none)."""

    def summary(self, store: RunStore) -> dict[str, Any]:
        """Figures of this kind added to `show --json`."""

    def registries(self) -> list[Registry[Any]]:
        """The registries `promptclimb methods` lists for this kind."""


# Stored config "kind" -> the kind's factory (a run without one is a classification run).
RUN_KINDS: Registry[RunKind] = Registry(
    "run kind",
    {"classify": CLASSIFY, "generate": T2I, "invert": T2I, "personalize": T2I},
    help={"classify": "few-shot image classification (optimize)", "generate": "text-to-image from words",
          "invert": "text-to-image: a prompt for a given image", "personalize": "text-to-image: edit a subject"},
)


def kind_of(config: dict[str, Any]) -> RunKind:
    """The kind of a run, from its stored config."""
    return RUN_KINDS.create(str(config.get("kind") or "classify"))


def all_kinds() -> list[RunKind]:
    """Each kind once, in registry order of its first name."""
    seen: dict[str, RunKind] = {}
    for name in RUN_KINDS.names():
        kind = RUN_KINDS.create(name)
        seen.setdefault(kind.name, kind)
    return [seen[k] for k in sorted(seen)]


def print_result(console: Console, kind: RunKind, out: Path, result: Any) -> int:
    """The one result printer: warnings on stderr, then the kind's lines (status 1 if nothing was found)."""
    for warning in result.warnings:
        print(f"promptclimb: warning: {warning}", file=sys.stderr)
    if result.best is None:
        console.print(f"[red]{kind.nothing_found}[/]; see `promptclimb show` for why")
        return 1
    for line in kind.result_lines(result, out):
        console.print(line, highlight=False)
    return 0
