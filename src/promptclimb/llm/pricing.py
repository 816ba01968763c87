"""Cost estimates for LLM calls from a price table (USD per 1M input / output tokens). The table
ships as data (prices.json); ``PROMPTCLIMB_PRICES=FILE`` merges the user's own over it. Local
models and unknown names cost None (not counted as zero dollars spent by mistake: they are free
or unpriced, and the report says so)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptclimb.chat import ChatReply
    from promptclimb.llm.base import ChatLLM


@cache
def _table(override: str | None) -> dict[str, tuple[float, float]]:
    data = json.loads(resources.files("promptclimb.llm").joinpath("prices.json").read_text())
    if override:
        path = Path(override)
        if not path.is_file():
            raise ValueError(f"PROMPTCLIMB_PRICES={override} does not exist: give a JSON file of model: [in, out]")
        data.update(json.loads(path.read_text()))
    return {k: (float(v[0]), float(v[1])) for k, v in data.items() if not k.startswith("_")}


def price_table() -> dict[str, tuple[float, float]]:
    return _table(os.environ.get("PROMPTCLIMB_PRICES"))


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    prices = price_table()
    # Dated snapshots ("gpt-4o-mini-2024-07-18") are priced as their family.
    name = model if model in prices else next((k for k in sorted(prices, key=len, reverse=True)
                                               if model.startswith(k + "-")), None)
    if name is None:
        return None
    p_in, p_out = prices[name]
    return (prompt_tokens * p_in + completion_tokens * p_out) / 1e6


def reply_cost_fn(llm: ChatLLM | None) -> Callable[[ChatReply], float | None] | None:
    """What each reply of ``llm`` costs, by its model name ("openai:gpt-4o-mini" -> gpt-4o-mini)."""
    if llm is None:
        return None
    model = llm.name.partition(":")[2] or llm.name
    return lambda reply: estimate_cost(model, reply.prompt_tokens, reply.completion_tokens)
