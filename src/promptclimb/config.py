"""Typed run configuration. The resolved config (file + command-line flags) is stored with the
run, so ``promptclimb resume DIR`` rebuilds exactly the same run.

A config file is TOML or JSON with the fields of RunConfig, e.g.::

    task = "tuxpaint"
    method = "hill_climb"
    [method_options]
    restarts = 3
    [budget]
    scorer_queries = 50

Racing (racing.py) is on for any method with ``racing = true``, a ``[racing]`` table of its settings
(which turns it on unless it says ``enabled = false``), or the same under ``method_options.racing``
(``--set method_options.racing=true``, ``--set racing.minibatch=40``); it is stored as ``racing``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line naming the key and the fix."""


class BudgetConfig(BaseModel):
    """Limits for one run; the first one reached stops it cleanly. Unset = no limit."""

    model_config = ConfigDict(extra="forbid")
    scorer_queries: int | None = Field(None, ge=1, description="templates scored on train (+val)")
    llm_calls: int | None = Field(None, ge=1)
    llm_tokens: int | None = Field(None, ge=1, description="prompt + completion tokens")
    cost_usd: float | None = Field(None, gt=0, description="estimated from the price table")
    scorer_images: int | None = Field(None, ge=1, description="images scored on train (+val)")


class RacingConfig(BaseModel):
    """Racing's settings (the rule and its defaults: racing.py)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    minibatch: int | None = Field(None, description="train images of the first rung (default: racing.py)")
    top_k: int = Field(3, ge=1, description="a candidate races the k-th best fully scored template")
    z: float = Field(2.0, ge=0, description="slack in standard deviations of the paired difference")


def _racing_table(value: Any) -> dict[str, Any]:
    """``true``/``false`` or a table of settings (on unless it says ``enabled = false``)."""
    if isinstance(value, bool):
        return {"enabled": value}
    if isinstance(value, dict):
        return {"enabled": True, **value}
    raise ConfigError(f"racing: expected true, false or a table of settings, got {value!r}")


def default_cache_dir() -> str:
    return os.environ.get("PROMPTCLIMB_CACHE", str(Path.home() / ".cache" / "promptclimb"))


class RunConfig(BaseModel):
    """Everything that defines a run. Backend options are checked by the backend they go to."""

    model_config = ConfigDict(extra="forbid")
    task: str = Field("tuxpaint", description="task name, e.g. tuxpaint, fashion-mnist, coop:eurosat")
    scorer: str = Field("conse", description="VLM scorer, e.g. conse, open_clip:RN50/openai")
    llm: str = Field("llamacpp:qwen2.5-coder-1.5b", description="chat LLM, e.g. openai:gpt-4o-mini")
    method: str = Field("hill_climb", description="proposer, see `promptclimb methods`")
    seed: int = Field(1, ge=0, description="few-shot split and LLM sampling seed")
    shots: int = Field(16, ge=1, le=1000, description="train images per class")
    data_root: str | None = Field(None, description="folder holding the CoOp data sets")
    cache_dir: str = Field(default_factory=default_cache_dir)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    method_options: dict[str, Any] = Field(default_factory=dict)
    llm_options: dict[str, Any] = Field(default_factory=dict)
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    llm_cache: bool = Field(True, description="keep LLM replies in cache_dir/llm_cache.sqlite")
    replay_only: bool = Field(False, description="fail on an LLM cache miss instead of calling")
    score_val: bool = Field(False, description="also score every template on the val split")
    evaluate_test: bool = Field(True, description="score the final template on the test split")
    selection: str = Field("best_train", description="rule choosing the final template, see selection.py")
    ensemble_k: int = Field(0, ge=0, le=100, description="also score the top-k templates as an ensemble")
    oracle_top_n: int = Field(0, ge=0, le=1000,
                              description="report only: best on test among the top-N on train")
    n_jobs: int = Field(1, ge=1, le=64, description="restarts run concurrently (remote LLMs)")
    max_endpoint_failures: int = Field(3, ge=1, le=1000, description="consecutive LLM calls the endpoint "
                                       "may fail (after retries) before the run stops, resumable")
    racing: RacingConfig = Field(default_factory=RacingConfig, description="successive halving, racing.py")

    @model_validator(mode="before")
    @classmethod
    def _gather_racing(cls, data: Any) -> Any:
        """``racing`` and ``method_options.racing`` (for any method) become the one racing table."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        racing = _racing_table(data["racing"]) if "racing" in data else {}
        options = data.get("method_options")
        if isinstance(options, dict) and "racing" in options:
            options = dict(options)
            racing = {**racing, **_racing_table(options.pop("racing"))}
            data["method_options"] = options
        if racing:
            data["racing"] = racing
        return data


def describe_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line for the first problem pydantic found."""
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "config"
    if e["type"] == "extra_forbidden":
        return f"{prefix}{where}: unknown key; check its spelling (see `promptclimb optimize --help`)"
    return f"{prefix}{where}: {e['msg']} (got {e.get('input')!r})"


def load_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: give a TOML or JSON file")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        kind = path.suffix.lstrip(".") or "TOML"
        raise ConfigError(f"config file {path} is not valid {kind}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of settings")
    return data


def apply_sets(settings: dict[str, Any], items: list[str],
               example: str = "method_options.restarts=2") -> dict[str, Any]:
    """``--set KEY=VALUE`` items written into ``settings`` (dotted keys make nested tables; VALUE is
    parsed as JSON, else kept as text). Every run kind's command line uses this one parser."""
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. {example}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, leaf = key.split(".")
        node = settings
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return settings


def merge(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Command-line values over file values (None = not given); nested tables are merged."""
    out = dict(data)
    for key, value in overrides.items():
        if value is None:
            continue
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def resolve_config(file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """File values, then command-line values (None = not given); nested dicts are merged."""
    data = merge(load_config_file(file) if file else {}, overrides)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "config error: ")) from None
