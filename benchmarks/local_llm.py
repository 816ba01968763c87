"""The embedded LLM as an optimizer (issue 4): how many of its replies yield a valid new template,
and what each one costs in tokens and seconds on this CPU.

It runs the paper's hill-climbing proposer for real through the public API (llama.cpp, grammar,
the model's own prompt shape or ``--prompt chat|completion``; LLM cache off so every reply is
generated; ``--no-prefix-reuse`` makes llama.cpp evaluate every prompt from scratch) on ``--task`` with
``--scorer`` (default: the tiny demo task and the fake scorer, so that the time measured is the
LLM's). Every reply ends in exactly one of:

- valid new: a usable template not seen before in the run (it is scored);
- copy: a template already in the run, including the ones it was shown (answered from the store);
- rejected: unusable (no ``{}``, degenerate, a near-copy ...), answered with a corrective message.

Human-readable lines first; the last line is one JSON object. Usage:
``python benchmarks/local_llm.py [--model qwen2.5-coder-0.5b | smollm2 | ...] [--prompt chat] [--restarts 2 ...]``
Run one at a time: two llama.cpp processes on 2 cores slow each other several-fold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections import Counter
from pathlib import Path

from promptclimb.candidate import TrialState
from promptclimb.config import RunConfig
from promptclimb.run import start_run
from promptclimb.store import RunStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="llamacpp model name or GGUF path")
    ap.add_argument("--task", default="demo")
    ap.add_argument("--scorer", default="fake")
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--resets", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prompt", choices=["chat", "completion"], help="prompt shape (default: the model's own)")
    ap.add_argument("--no-prefix-reuse", action="store_true", help="evaluate every prompt from scratch")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    llm_options: dict[str, object] = {"n_threads": args.threads, "prefix_reuse": not args.no_prefix_reuse}
    if args.prompt:
        llm_options["prompt"] = args.prompt

    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig(
            task=args.task, scorer=args.scorer, llm=f"llamacpp:{args.model}", method="hill_climb",
            seed=args.seed, llm_cache=False, evaluate_test=False, llm_options=llm_options,
            method_options={"restarts": args.restarts, "resets": args.resets, "iterations": args.iterations},
        )
        start_run(config, Path(tmp) / "run")
        store = RunStore.open(Path(tmp) / "run")
        exchanges = [e for e in store.exchanges() if e.reply is not None]
        trials = [t for t in store.trials() if t.exchange_id is not None]
        store.close()

    outcome = Counter("valid new" if t.state is TrialState.COMPLETE else
                      "copy" if t.state is TrialState.DUPLICATE else "rejected" for t in trials)
    # A reply is one LLM call's text; the grammar makes it one line. Corrective retries are replies too.
    replies = len(exchanges)
    seconds = sum(e.finished_at - e.started_at for e in exchanges)
    completion = sum(e.completion_tokens for e in exchanges)
    draws = sum(e.reply.draws for e in exchanges if e.reply is not None)
    prompt = sum(e.prompt_tokens for e in exchanges)
    # The replies in order, hashed: two runs (two versions of the backend) that drew the same
    # replies print the same digest.
    texts = "\n".join(text for e in exchanges if e.reply is not None for text in e.reply.texts)
    valid = outcome["valid new"]
    shape = args.prompt or "own prompt shape"
    reuse = "off" if args.no_prefix_reuse else "on"
    print(f"model {args.model} ({shape}, prefix reuse {reuse}): {len(exchanges)} LLM calls, "
          f"{replies} templates proposed")
    for name in ("valid new", "copy", "rejected"):
        print(f"  {name:9s} {outcome[name]:4d}  ({outcome[name] / max(replies, 1):.1%})")
    print(f"  {prompt} prompt + {completion} completion tokens in {seconds:.1f} s of generation")
    print(f"  {draws} samples drawn in all (a copy of a known template is redrawn inside the backend)")
    print(json.dumps({
        "valid_share": round(valid / max(replies, 1), 3),
        "copy_share": round(outcome["copy"] / max(replies, 1), 3),
        "rejected_share": round(outcome["rejected"] / max(replies, 1), 3),
        "tokens_per_s": round(completion / seconds, 1) if seconds else None,
        "completion_tokens_per_valid": round(completion / valid, 1) if valid else None,
        "prompt_tokens_per_valid": round(prompt / valid, 1) if valid else None,
        "seconds_per_valid": round(seconds / valid, 3) if valid else None,
        "draw_valid_share": round(valid / max(draws, 1), 3),
        "replies": replies, "llm_calls": len(exchanges), "draws": draws, "model": args.model,
        "prompt": args.prompt, "prefix_reuse": not args.no_prefix_reuse, "threads": args.threads,
        "replies_sha256": hashlib.sha256(texts.encode()).hexdigest()[:16],
    }))


if __name__ == "__main__":
    main()
