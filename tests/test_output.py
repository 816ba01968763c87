"""output.py: bars only where a console was given, one display for nested bars, other libraries'
prints dropped unless verbose."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from promptclimb import output


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    output.configure(None)


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


def test_no_console_no_output(capsys: pytest.CaptureFixture[str]) -> None:
    output.configure(None)
    with output.track("image features", total=3) as advance:
        advance(3)
    assert capsys.readouterr() == ("", "")


def test_bar_shows_count_rate_and_description() -> None:
    console, buffer = terminal()
    output.configure(console)
    with output.track("image features · conse", total=40) as advance:
        for _ in range(4):
            advance(10)
    text = buffer.getvalue()
    assert "image features · conse" in text and "40/40 images" in text and "images/s" in text


def test_nested_bars_share_one_display() -> None:
    console, buffer = terminal()
    output.configure(console)
    with output.track("image features", total=2) as advance, output.loading("a model"):
        advance(2)  # rich allows one live display: a second one would raise LiveError
    assert "loading a model" in buffer.getvalue() and "2/2 images" in buffer.getvalue()


@pytest.mark.parametrize("verbose", [False, True])
def test_library_prints_are_dropped_unless_verbose(capsys: pytest.CaptureFixture[str], verbose: bool) -> None:
    output.configure(None, verbose=verbose)
    with output.library_output():
        print("Loaded pretrained weights for efficientnet-lite0")
    assert ("Loaded pretrained weights" in capsys.readouterr().out) is verbose


def test_quiet_silences_library_loggers() -> None:
    logging.getLogger("transformers").setLevel(logging.INFO)
    output.configure(None)
    assert logging.getLogger("transformers").level == logging.ERROR
