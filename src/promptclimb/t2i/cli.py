"""The text-to-image commands: `promptclimb generate "INTENT"`, `promptclimb invert IMAGE` and
`promptclimb personalize RUN "EDIT"`, and how `promptclimb resume DIR` continues their runs (the
text-to-image kind, t2i/kind.py, offers them to the CLI). Errors a user can fix end as one line and exit status 2."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from promptclimb.config import ConfigError, apply_sets
from promptclimb.kinds import print_result
from promptclimb.t2i.kind import KIND

INHERITED = ("generator", "judge", "scorer", "scorer_options", "llm", "llm_options", "method", "method_options",
             "objective", "seed")


def _add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default t2i-runs/KIND-WORDS; must not hold a run)")
    p.add_argument("--generator", help="openai:dall-e-3, openai:gpt-image-1, openai:MODEL with --endpoint, "
                                       "diffusers:MODEL_OR_FOLDER")
    p.add_argument("--judge", help="multimodal chat model, e.g. openai:gpt-4o (the default for DALL-E on OpenAI)")
    p.add_argument("--llm", help="prompt-writing LLM (default: the judge's model)")
    p.add_argument("--scorer", help="similarity backbone: conse (default), open_clip:ARCH/TAG, histogram")
    p.add_argument("--method", help="hill_climb (LLM conversation, default) or judge (the judge's revisions)")
    p.add_argument("--objective", choices=["similarity", "judge", "mean"], help="what picks the final prompt")
    p.add_argument("--endpoint", help="an OpenAI-compatible base URL for the generator, judge and LLM alike")
    p.add_argument("--api-key-env", help='environment variable with the key for all of them ("" = no key)')
    p.add_argument("--size", help="image size, e.g. 1024x1024")
    p.add_argument("--quality", help="standard/hd (dall-e-3), low/medium/high (gpt-image-1)")
    p.add_argument("--n-images", type=int, help="images per prompt (default 1)")
    p.add_argument("--iterations", type=int, help="prompts per conversation (default 4)")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-images", type=int, help="budget: images generated")
    p.add_argument("--max-trials", type=int, help="budget: prompts tried")
    p.add_argument("--max-llm-calls", type=int, help="budget: calls of the prompt-writing LLM")
    p.add_argument("--max-cost", type=float, help="budget: estimated USD for images, judge and LLM")
    p.add_argument("--cache-dir", help="LLM cache (default ~/.cache/promptclimb)")
    p.add_argument("--config", type=Path, help="TOML or JSON file of T2IConfig settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. generator.base_url=http://... (VALUE is parsed as JSON)")


def _overrides(args: argparse.Namespace, **task: Any) -> dict[str, Any]:
    budget = {"images": args.max_images, "trials": args.max_trials, "llm_calls": args.max_llm_calls,
              "cost_usd": args.max_cost}
    generator = _spec(args.generator)
    generator.update({k: v for k, v in {"size": args.size, "quality": args.quality, "n": args.n_images}.items()
                      if v is not None})
    out: dict[str, Any] = {
        **task, "generator": generator or None, "judge": _spec(args.judge) or None, "llm": args.llm,
        "scorer": args.scorer, "method": args.method, "objective": args.objective, "seed": args.seed,
        "cache_dir": args.cache_dir,
        "budget": {k: v for k, v in budget.items() if v is not None} or None,
        "method_options": {"iterations": args.iterations} if args.iterations is not None else None,
    }
    apply_sets(out, args.set, example='generator.size="512x512"')
    return out


def _spec(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    backend, _, model = value.partition(":")
    return {"backend": backend, "model": model}


def default_out(kind: str, words: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:40].strip("-") or "run"
    base = Path("t2i-runs") / f"{kind}-{slug}"
    out, n = base, 2
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _start(args: argparse.Namespace, console: Console, kind: str, words: str, image: Path | None,
           base: dict[str, Any] | None = None, **task: Any) -> int:
    from promptclimb.report.console import ConsoleProgress
    from promptclimb.t2i.config import resolve
    from promptclimb.t2i.run import start_run

    config = resolve(args.config, _overrides(args, kind=kind, **task), endpoint=args.endpoint,
                     api_key_env=args.api_key_env, base=base)
    out = Path(args.out) if args.out else default_out(kind, words)
    args.out = str(out)  # for the "interrupted: resume with" hint
    console.print(f"[bold]promptclimb[/] {config.task} · generator {config.generator.backend}:"
                  f"{config.generator.model} · judge {config.judge.backend}:{config.judge.model} · "
                  f"method {config.method} · similarity {config.scorer} → {out}", highlight=False)
    return print_result(console, KIND, out, start_run(config, out, [ConsoleProgress(console)], reference=image))


def cmd_generate(args: argparse.Namespace, console: Console) -> int:
    return _start(args, console, "generate", args.intent, None, intent=args.intent)


def cmd_invert(args: argparse.Namespace, console: Console) -> int:
    image = Path(args.image)
    if not image.is_file():
        raise FileNotFoundError(f"image {image} does not exist: give a PNG or JPEG file to invert")
    return _start(args, console, "invert", image.stem, image, reference=str(image.resolve()))


def cmd_personalize(args: argparse.Namespace, console: Console) -> int:
    from promptclimb.t2i.run import load_source

    source = load_source(Path(args.run))
    replaced = {"generator": args.generator, "judge": args.judge, "llm": args.llm, "llm_options": args.llm}
    base = {k: source.config[k] for k in INHERITED if k in source.config and not replaced.get(k)}
    return _start(args, console, "personalize", f"{Path(args.run).name} {args.edit}", source.reference, base=base,
                  edit=args.edit, source_run=str(Path(args.run).resolve()), source_prompt=source.prompt)


def cmd_resume(args: argparse.Namespace, console: Console, n: int) -> int:
    from promptclimb.report.console import ConsoleProgress
    from promptclimb.t2i.run import resume_run

    if getattr(args, "replay_only", None):
        raise ConfigError("--replay-only is for classification runs; a text-to-image run replays its store anyway")
    out = Path(args.dir)
    console.print(f"resuming {out}: {n} prompts recorded; replaying them without generating again")
    changes = {"n_jobs": args.n_jobs} if getattr(args, "n_jobs", None) else {}
    return print_result(console, KIND, out, resume_run(out, [ConsoleProgress(console)], **changes))


def add_commands(sub: Any) -> None:
    """Add generate, invert and personalize to the `promptclimb` parser."""
    p = sub.add_parser("generate", help="text-to-image: find a prompt whose image shows INTENT")
    p.add_argument("intent", help='what the image should show, in words, e.g. "a fox reading under a lamp"')
    _add_flags(p)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("invert", help="text-to-image: find a prompt that regenerates IMAGE")
    p.add_argument("image", help="the reference image (PNG or JPEG; sent only to the judge you configure)")
    _add_flags(p)
    p.set_defaults(func=cmd_invert)
    p = sub.add_parser("personalize", help="text-to-image: edit the subject of an invert run, e.g. \"make it swim\"")
    p.add_argument("run", help="the run directory of `promptclimb invert` (or `generate`)")
    p.add_argument("edit", help='the change, e.g. "make the dog swim"')
    _add_flags(p)
    p.set_defaults(func=cmd_personalize)
