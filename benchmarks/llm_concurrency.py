"""LLM concurrency (issue 4): restarts are independent conversations, so against a remote endpoint
that is the bottleneck, a run with R restarts should take about as long as one.

A local chat-completions server (promptclimb.testing.ChatServer) answers every request after a
fixed latency (default 200 ms) with a new, distinct template. The same hill-climbing run
(``--restarts`` x ``--iterations``, one reset, fake scorer, LLM cache off) is timed twice through
the public API: restarts one after another (n_jobs=1) and all at once (n_jobs=restarts).
Both runs must make the same number of LLM calls; the script checks it.

Human-readable lines first; the last line is one JSON object. Usage:
``python benchmarks/llm_concurrency.py [--latency 0.2 --restarts 8 --iterations 5]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from promptclimb.config import RunConfig
from promptclimb.run import start_run
from promptclimb.store import RunStore
from promptclimb.testing.chat_server import ChatServer

WORDS = ("bright", "dark", "small", "large", "blurry", "sharp", "old", "new", "clean", "dirty", "quiet", "loud")


def distinct_templates() -> Any:
    """A reply function giving a never-repeated template, so no proposal is a duplicate."""
    counter = itertools.count()
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> str:
        with lock:
            n = next(counter)
        k = len(WORDS)  # two different words: a repeated word is rejected as degenerate
        a, b = WORDS[n % k], WORDS[(n % k + 1 + (n // k) % (k - 1)) % k]
        return f"a {a} {b} picture number {n} of the {{}}."
    return reply


def timed_run(server: ChatServer, out: Path, n_jobs: int, restarts: int, iterations: int) -> tuple[float, int]:
    config = RunConfig(
        task="demo", scorer="fake", llm="openai:bench-model", method="hill_climb", seed=1,
        llm_cache=False, cache_dir=str(out.parent / "cache"), n_jobs=n_jobs, evaluate_test=False,
        method_options={"restarts": restarts, "resets": 1, "iterations": iterations},
        llm_options={"base_url": server.url, "api_key_env": "", "max_concurrency": restarts, "timeout": 30},
    )
    start = time.perf_counter()
    start_run(config, out)
    seconds = time.perf_counter() - start
    store = RunStore.open(out)
    calls = len(store.exchanges())
    store.close()
    return seconds, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2, help="seconds the server waits per request")
    ap.add_argument("--restarts", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, \
            ChatServer(distinct_templates(), models=("bench-model",), latency_s=args.latency) as server:
        seq_s, seq_calls = timed_run(server, Path(tmp) / "sequential", 1, args.restarts, args.iterations)
        print(f"sequential (n_jobs=1): {seq_s:.2f} s, {seq_calls} LLM calls")
        con_s, con_calls = timed_run(server, Path(tmp) / "concurrent", args.restarts, args.restarts,
                                     args.iterations)
        print(f"concurrent (n_jobs={args.restarts}): {con_s:.2f} s, {con_calls} LLM calls, "
              f"at most {server.max_in_flight} requests in flight")
    if seq_calls != con_calls:
        raise SystemExit(f"the two runs made different numbers of LLM calls ({seq_calls} vs {con_calls})")
    floor = args.iterations * args.latency
    print(f"latency floor of one restart: {floor:.2f} s; {args.restarts} restarts x {args.iterations} iterations")
    print(json.dumps({"speedup": round(seq_s / con_s, 2), "sequential_s": round(seq_s, 2),
                      "concurrent_s": round(con_s, 2), "llm_calls": seq_calls, "latency_s": args.latency,
                      "restarts": args.restarts, "iterations": args.iterations}))


if __name__ == "__main__":
    main()
