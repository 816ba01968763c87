"""Which tokens the avoid-list check looks at: line enders the grammar can write, and no others."""

from __future__ import annotations

import pytest

from promptclimb.llm.llamacpp import _line_enders, grammar_alphabet
from promptclimb.llm.local_models import PromptShape


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
    enders = _line_enders(Vocab(TOKENS), grammar_alphabet("chat"))
    assert [t for _, t in enders] == [" cat.", ".", " {}."]


def test_completion_enders_may_hold_the_newline_and_apostrophes() -> None:
    enders = _line_enders(Vocab(TOKENS), grammar_alphabet("completion"))
    assert [t for _, t in enders] == [" cat.", ".", ".\n", "\n", "'s.", " {}."]


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(("shape", "others"), [("chat", " ,-{}."), ("completion", " ,'-{}.\n")])
def test_each_alphabet_is_read_from_its_grammar_file(shape: PromptShape, others: str) -> None:
    assert grammar_alphabet(shape) == frozenset(LETTERS + others)
