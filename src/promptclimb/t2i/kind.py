"""The text-to-image run kind: its commands (generate, invert, personalize), how its runs resume,
the lines that tell a result, its report section and its figures in `show --json`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from promptclimb.registry import Registry
from promptclimb.store import RunStore


class TextToImage:
    name = "t2i"
    nothing_found = "no prompt produced a usable image"

    def add_commands(self, sub: Any) -> None:
        from promptclimb.t2i.cli import add_commands

        add_commands(sub)

    def finished_line(self, out: Path, n: int) -> str:
        return f"{out} is already finished ({n} prompts tried); see `promptclimb report {out}`"

    def resume(self, args: argparse.Namespace, console: Console, n: int) -> int:
        from promptclimb.t2i.cli import cmd_resume

        return cmd_resume(args, console, n)

    def result_lines(self, result: Any, out: Path) -> list[str]:
        best = result.best
        images = ", ".join(str(out / p) for p in best.metrics.get("images", []))
        stop = f" (stopped by budget {result.stopped_by})" if result.stopped_by else ""
        return [f"[bold green]best prompt[/] {best.template!r}: similarity {best.metrics.get('similarity', 0):.3f}, "
                f"judge {best.metrics.get('judge_score')}/10{stop}", f"image: {images}",
                f"report: promptclimb report {out}   edit it: promptclimb personalize {out} \"EDIT\""]

    def report_section(self, store: RunStore, run_dir: Path) -> str:
        from promptclimb.t2i.report import render_section

        return render_section(store, run_dir)

    def summary(self, store: RunStore) -> dict[str, Any]:
        images = store.calls("image")
        return {"kind": store.config.get("kind"), "images": sum(c.units for c in images)}

    def registries(self) -> list[Registry[Any]]:
        from promptclimb.t2i import GENERATORS, JUDGES, SIMILARITIES, T2I_METHODS

        return [T2I_METHODS, GENERATORS, JUDGES, SIMILARITIES]


KIND = TextToImage()


def kind(arg: str = "") -> TextToImage:
    return KIND
