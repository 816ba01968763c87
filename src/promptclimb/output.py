"""What promptclimb shows while it works: progress bars for long work, and the silence of other libraries.

Library code reports long work through :func:`track` (a bar with count, rate and ETA, or a spinner
when the total is unknown) and wraps model loading in :func:`library_output`, which swallows what
other libraries print unless output is verbose. Nothing is shown until :func:`configure` gives a
console (the CLI does, unless ``--quiet``); the Python API stays silent by default.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

# Loggers of libraries whose INFO/WARNING chatter is not for promptclimb's users.
NOISY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "timm", "open_clip", "torch",
                 "clip_benchmark", "urllib3", "filelock")
# Read by those libraries at import (and inherited by worker processes).
QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
             "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


@dataclass
class _State:
    console: Console | None = None
    verbose: bool = False
    progress: Progress | None = None  # the one live display, shared by nested bars
    users: int = 0


_state = _State()


def configure(console: Console | None, *, verbose: bool = False) -> None:
    """Show progress on ``console`` (None: show none); unless ``verbose``, silence other libraries."""
    _state.console, _state.verbose = console, verbose
    if not verbose:
        silence_libraries()


def verbose() -> bool:
    return _state.verbose


def silence_libraries() -> None:
    """Environment switches and logger levels that keep other libraries' progress bars and notices away."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    tf_logging = sys.modules.get("transformers.utils.logging")  # read QUIET_ENV if imported later
    if tf_logging is not None:
        tf_logging.set_verbosity_error()
        tf_logging.disable_progress_bar()


@contextlib.contextmanager
def library_output() -> Iterator[None]:
    """Around calls into other libraries (model loading): what they print to Python's stdout and
    stderr is dropped, unless output is verbose."""
    if verbose():
        yield
        return
    silence_libraries()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class _CountColumn(ProgressColumn):
    """'123/500 images · 41.2 images/s · eta 0:00:09' for counted work; nothing for a spinner."""

    def render(self, task: Task) -> Text:
        if task.total is None or task.fields.get("spinner"):
            return Text("")
        unit = task.fields.get("unit", "")
        speed = task.finished_speed or task.speed
        parts = [f"{int(task.completed)}/{int(task.total)} {unit}"]
        if speed:
            parts.append(f"{speed:.1f} {unit}/s")
        if not task.finished and task.time_remaining is not None:
            parts.append(f"eta {timedelta(seconds=round(task.time_remaining))}")
        return Text(" · ".join(parts), style="progress.download")


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), BarColumn(bar_width=24),
                    _CountColumn(), TimeElapsedColumn(), console=console)


@contextlib.contextmanager
def track(description: str, total: int | None = None, unit: str = "images") -> Iterator[Callable[[int], None]]:
    """A progress bar (``total`` known) or spinner (None) for the work inside; yields ``advance(n)``.

    Bars opened while another is showing join the same display (rich allows one live display)."""
    if _state.console is None:
        yield lambda n: None
        return
    if _state.progress is None:
        _state.progress = _progress(_state.console)
        _state.progress.start()
    progress = _state.progress
    _state.users += 1
    task = progress.add_task(description, total=total, unit=unit, spinner=total is None)
    try:
        yield lambda n: progress.advance(task, n)
        if total is None:
            progress.update(task, total=1, completed=1)  # done: a full bar and a tick
    finally:
        _state.users -= 1
        progress.refresh()
        if not _state.users:
            progress.stop()
            _state.progress = None


@contextlib.contextmanager
def loading(what: str) -> Iterator[None]:
    """A spinner while a model loads, with other libraries' output silenced."""
    with track(f"loading {what}", None, ""), library_output():
        yield


def add_output_flags(p: Any) -> None:
    """--quiet / --verbose, the same on every command that works for long."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true",
                       help="print the result only (for scripts): no progress bars, no per-trial lines")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="also show other libraries' messages and progress bars (model loading...)")
