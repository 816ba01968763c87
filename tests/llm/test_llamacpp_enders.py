"""Which tokens the avoid-list check looks at: line enders the grammar can write, and no others."""

from __future__ import annotations

import re

import pytest

from promptclimb.llm.llamacpp import ALPHABETS, _grammar_text, _line_enders


class Vocab:
    """The two calls _line_enders makes on a llama.cpp model, over a given token list."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens

    def n_vocab(self) -> int:
        return len(self.tokens)

    def detokenize(self, ids: list[int]) -> bytes:
        return "".join(self.tokens[i] for i in ids).encode()


TOKENS = [" photo", " cat.", ".", ".\n", "\n", "1.", '".', "é.", "'s.", " {}.", "%.\n", "dog"]


def test_chat_enders_are_the_writable_ones_ending_in_a_full_stop() -> None:
    enders = _line_enders(Vocab(TOKENS), ALPHABETS["chat"])
    assert [t for _, t in enders] == [" cat.", ".", " {}."]


def test_completion_enders_may_hold_the_newline_and_apostrophes() -> None:
    enders = _line_enders(Vocab(TOKENS), ALPHABETS["completion"])
    assert [t for _, t in enders] == [" cat.", ".", ".\n", "\n", "'s.", " {}."]


@pytest.mark.parametrize("shape", sorted(ALPHABETS))
def test_each_alphabet_holds_every_character_its_grammar_can_write(shape: str) -> None:
    # Read the character classes and literals out of the grammar file, so a grammar that learns
    # a new character fails here until its alphabet does too.
    text = "\n".join(line.split("#")[0] for line in _grammar_text(shape).splitlines())  # type: ignore[arg-type]
    chars: set[str] = set()
    for cls in re.findall(r"\[([^\]]*)\]", text):
        for lo, hi in re.findall(r"(.)-(.)", cls):
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
        chars.update(re.sub(r".-.", "", cls))
    for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        chars.update(literal.encode().decode("unicode_escape"))
    assert chars <= ALPHABETS[shape]  # type: ignore[index]
    assert ALPHABETS[shape] <= chars  # type: ignore[index]
