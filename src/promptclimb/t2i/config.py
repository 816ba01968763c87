"""Typed configuration of a text-to-image run (generate, invert, personalize). The resolved config,
with its ``kind``, is stored with the run, so ``promptclimb resume DIR`` rebuilds the same run.
Keys are named, never stored: only the names of the environment variables that hold them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptclimb.config import ConfigError, default_cache_dir, describe_validation_error, load_config_file, merge

Kind = Literal["generate", "invert", "personalize"]
KINDS: tuple[str, ...] = ("generate", "invert", "personalize")
WITH_REFERENCE = ("invert", "personalize")  # the tasks that start from an image (RUN/reference.png)

NO_GENERATOR = ("no image generator configured: pass --generator openai:dall-e-3 (needs OPENAI_API_KEY) or "
                "--generator openai:MODEL --set generator.base_url=... or install diffusers and pass "
                "--generator diffusers:MODEL")
NO_JUDGE = ("no judge configured: pass --judge openai:MODEL, a chat model that takes images (e.g. gpt-4o), "
            "with --set judge.base_url=... for your endpoint")

NO_LLM = ("no prompt-writing LLM: pass --llm openai:MODEL, or --method judge to use the judge's own revisions "
          "(it needs no LLM)")


class NoGeneratorError(ConfigError):
    """No image generator was configured."""


class GeneratorConfig(BaseModel):
    """The text-to-image model. Options a backend does not use are ignored by it."""

    model_config = ConfigDict(extra="forbid")
    backend: str | None = Field(None, description="openai, diffusers or fake")
    model: str = Field("", description="dall-e-3, gpt-image-1, a diffusers model id or folder")
    base_url: str | None = Field(None, description="an OpenAI-compatible images endpoint")
    api_key_env: str = Field("OPENAI_API_KEY", description='environment variable holding the key ("" = none)')
    size: str = "1024x1024"
    quality: str | None = Field(None, description="standard/hd (dall-e-3), low/medium/high (gpt-image-1)")
    style: str | None = Field(None, description="vivid/natural (dall-e-3)")
    n: int = Field(1, ge=1, le=8, description="images per prompt")
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=1, le=20)
    send_seed: bool = Field(False, description="send the seed in the request body (endpoints that take one)")
    steps: int = Field(30, ge=1, le=500, description="diffusers: inference steps")
    guidance_scale: float = Field(7.0, ge=0, description="diffusers: classifier-free guidance")
    device: str | None = Field(None, description="diffusers: cpu, cuda, mps (default: best available)")


class JudgeConfig(BaseModel):
    """The multimodal chat model that looks at the images and writes feedback."""

    model_config = ConfigDict(extra="forbid")
    backend: str | None = Field(None, description="openai or scripted")
    model: str = Field("", description="e.g. gpt-4o; scripted: a replies file (optional)")
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(700, ge=50, le=8192)
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=1, le=20)
    detail: Literal["low", "high", "auto"] = "auto"
    json_mode: bool = Field(True, description="ask for a JSON object (response_format)")
    see_reference: bool = Field(True, description="send the reference image to the judge (inversion needs it)")


class T2IBudget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: int | None = Field(None, ge=1, description="images generated")
    trials: int | None = Field(None, ge=1, description="prompts tried")
    llm_calls: int | None = Field(None, ge=1, description="calls of the prompt-writing LLM")
    llm_tokens: int | None = Field(None, ge=1)
    cost_usd: float | None = Field(None, gt=0, description="images + judge + LLM, estimated")


class T2IConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    task: str = Field("", description="one line saying what the run does (for reports)")
    intent: str | None = Field(None, description="generate: what the user wants to see, in words")
    reference: str | None = Field(None, description="invert: the user's image (copied to RUN/reference.png)")
    edit: str | None = Field(None, description='personalize: the edit, e.g. "make the dog swim"')
    source_run: str | None = Field(None, description="personalize: the run whose prompt is edited")
    source_prompt: str | None = Field(None, description="personalize: that run's final prompt")
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    scorer: str = Field("conse", description="similarity backbone: conse, open_clip:MODEL/TAG, histogram")
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    objective: Literal["similarity", "judge", "mean"] = Field("similarity", description="what picks the prompt")
    llm: str | None = Field(None, description="prompt-writing LLM (default: the judge's model)")
    llm_options: dict[str, Any] = Field(default_factory=dict)
    method: str = Field("hill_climb", description="hill_climb (LLM conversation) or judge (judge's revisions)")
    method_options: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(1, ge=0)
    cache_dir: str = Field(default_factory=default_cache_dir)
    llm_cache: bool = True
    budget: T2IBudget = Field(default_factory=T2IBudget)
    n_jobs: int = Field(1, ge=1, le=16)


def _spec(value: str) -> dict[str, str]:
    backend, _, model = value.partition(":")
    return {"backend": backend, "model": model}


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """``generator = "openai:dall-e-3"`` (a spec) as ``{backend, model}``."""
    return {k: _spec(v) if k in ("generator", "judge") and isinstance(v, str) else v for k, v in data.items()}


def resolve(file: Path | None, overrides: dict[str, Any], *, endpoint: str | None = None,
            api_key_env: str | None = None, base: dict[str, Any] | None = None) -> T2IConfig:
    """``base`` (settings inherited from another run), then the file, then flags; ``--endpoint`` and
    ``--api-key-env`` fill base_url/api_key_env wherever not set. Then defaults that depend on
    other settings."""
    data = merge(_normalise(base or {}), _normalise(load_config_file(file) if file else {}))
    data = merge(data, _normalise(overrides))
    for part in ("generator", "judge"):
        node = data.setdefault(part, {})
        if isinstance(node, dict):
            if endpoint and not node.get("base_url"):
                node["base_url"] = endpoint
            if api_key_env is not None and "api_key_env" not in node:
                node["api_key_env"] = api_key_env
    try:
        config = T2IConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "config error: ")) from None
    return with_defaults(config, endpoint, api_key_env)


def with_defaults(config: T2IConfig, endpoint: str | None = None, api_key_env: str | None = None) -> T2IConfig:
    gen, judge = config.generator, config.judge
    if not gen.backend:
        raise NoGeneratorError(NO_GENERATOR)
    if not judge.backend:
        # Only DALL-E on the public API implies the public GPT-4o judge: never guess an endpoint.
        if gen.backend != "openai" or gen.base_url is not None or judge.base_url is not None:
            raise ConfigError(NO_JUDGE)
        judge = judge.model_copy(update={"backend": "openai", "model": "gpt-4o", "api_key_env": gen.api_key_env})
    if judge.backend == "openai" and not judge.model:
        raise ConfigError(NO_JUDGE)
    llm, llm_options = config.llm, dict(config.llm_options)
    if llm is None and judge.backend == "openai":  # else none: only a method that asks an LLM needs one
        llm = f"openai:{judge.model}"
        llm_options = {"base_url": judge.base_url, "api_key_env": judge.api_key_env, **llm_options}
    elif llm is not None and llm.startswith("openai:"):
        if endpoint:
            llm_options.setdefault("base_url", endpoint)
        if api_key_env is not None:
            llm_options.setdefault("api_key_env", api_key_env)
    if llm_options.get("base_url") is None:
        llm_options.pop("base_url", None)
    return config.model_copy(update={"judge": judge, "llm": llm, "llm_options": llm_options,
                                     "task": config.task or describe_task(config)})


# One line saying what a run of each task does (for reports).
DESCRIBE: dict[str, Callable[[T2IConfig], str]] = {
    "generate": lambda c: f'generate "{c.intent}"',
    "invert": lambda c: f"invert {Path(c.reference or '').name}",
    "personalize": lambda c: f'personalize {Path(c.source_run or "").name}: "{c.edit}"',
}


def describe_task(config: T2IConfig) -> str:
    return DESCRIBE[config.kind](config)


def load_stored(stored: dict[str, Any], where: Path) -> T2IConfig:
    try:
        return T2IConfig.model_validate(stored)
    except ValidationError as err:
        from promptclimb.store import StoreError

        raise StoreError(describe_validation_error(err, f"{where}: stored config is invalid: ")) from None
