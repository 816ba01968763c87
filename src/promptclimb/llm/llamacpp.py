"""A local GGUF model through llama-cpp-python: the embedded offline LLM of the main job.

Each embedded model has a prompt shape (``local_models.EMBEDDED``, chosen on measurements).
``template_line`` requests to a *chat* model go through its own chat template as the conversation
they are, with a GBNF grammar on the assistant's reply only: one line, exactly one ``{}``, no
quotes or digits (so no copied scores), ending in a full stop. A *completion* model (tiny ones turn
chat turns into meta-sentences: SmolLM2-135M failed 5 of 5 free-form) instead continues the
request's ``completion_prompt`` (a scored list ending in "-") under a one-line grammar.
Both are cut to fit the context window: a list loses its worst lines first, a conversation its
oldest exchanges, never its opening.

llama.cpp keeps the evaluated tokens of the last request and evaluates only what follows the
common prefix, so one turn of a conversation costs its new tokens (``prefix_reuse=False`` resets
the model before each request, for measuring that).

Names: ``llamacpp:qwen2.5-coder-0.5b``, ``llamacpp:qwen2.5-coder-1.5b``, ``llamacpp:smollm2``,
``llamacpp:gemma3-270m`` (see ``local_models``), or ``llamacpp:/path/to/model.gguf``
(``llm_options.prompt`` = chat | completion; chat by default for a path).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from difflib import SequenceMatcher
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from promptclimb.candidate import word_key
from promptclimb.llm.base import ChatReply, ChatRequest, LLMConfigError, LLMReplyError
from promptclimb.llm.local_models import DEFAULT_MODEL, PromptShape, resolve

# This llama.cpp build uses OpenMP: spinning worker threads make generation 20-40x slower when
# anything else runs on a 2-core machine. Must be set before the OpenMP runtime loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


GRAMMARS: dict[PromptShape, str] = {"completion": "template_line.gbnf", "chat": "template_reply.gbnf"}
# Grammars of other reply shapes (chat.py Shape), the same under either prompt shape.
REPLY_GRAMMARS: dict[str, str] = {"class_lines": "class_lines.gbnf"}


@cache
def reply_grammar(shape: str) -> str:
    """The GBNF text that constrains replies of a request shape other than template_line."""
    return resources.files("promptclimb.llm").joinpath(f"grammars/{REPLY_GRAMMARS[shape]}").read_text()


@cache
def _grammar_text(shape: PromptShape = "completion") -> str:
    return resources.files("promptclimb.llm").joinpath(f"grammars/{GRAMMARS[shape]}").read_text()


@cache
def grammar_alphabet(shape: PromptShape) -> frozenset[str]:
    """Every character the shape's grammar can write: its character classes and its literals.
    A token holding any other character is never sampled under that grammar, so the avoid-list
    check need not look at it (Qwen has 2,353 line-ending tokens, 10 of them writable under the
    chat grammar: tens of ms per generated token saved)."""
    text = "\n".join(line.split("#")[0] for line in _grammar_text(shape).splitlines())
    chars: set[str] = set()
    for cls in re.findall(r"\[([^\]]*)\]", text):
        for lo, hi in re.findall(r"(.)-(.)", cls):
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
        chars.update(re.sub(r".-.", "", cls))
    for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        chars.update(literal.encode().decode("unicode_escape"))
    return frozenset(chars)


def amx_warning(system_info: str, version: str) -> str | None:
    """A one-line warning when llama.cpp was built with Intel AMX kernels: on some Sapphire Rapids
    machines they segfault in the first decode of Q4_K_M models (ggml-org/llama.cpp#20824), which
    kills the process with no message. scripts/install.sh builds without them. ``version`` is the
    installed llama-cpp-python's, so the rebuild command reinstalls what is there."""
    if "AMX_INT8 = 1" not in system_info:
        return None
    rebuild = ('CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" CXXFLAGS="$CFLAGS" '
               f"pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python=={version}")
    return ("this llama-cpp-python build uses AMX kernels, which segfault on some Xeons "
            f"(llama.cpp#20824); if the run dies with a segmentation fault, rebuild: {rebuild}")


_MODELS: dict[tuple[str, int, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def _load(path: Path, n_ctx: int, n_threads: int, state_cache_mb: int = 0) -> Any:
    """One loaded model per (file, context, threads, cache) in a process: loading is the slow part.
    With ``state_cache_mb`` the model also keeps the evaluated states of earlier requests in RAM,
    so a conversation that opens like an earlier one (every restart's first opening shows the same
    pool) restores that state instead of evaluating its prompt again."""
    key = (str(path), n_ctx, n_threads, state_cache_mb)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama, LlamaRAMCache, llama_print_system_info
                from llama_cpp import __version__ as llama_cpp_version
            except ImportError:
                raise LLMConfigError("llama-cpp-python is not installed: run `bash scripts/install.sh`") from None
            if not _MODELS:  # once a process: the build is the same for every model
                system_info = llama_print_system_info().decode(errors="replace")
                if warning := amx_warning(system_info, llama_cpp_version):
                    print(f"promptclimb: warning: {warning}", file=sys.stderr)
            from promptclimb import output

            with output.loading(path.name):
                model = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=output.verbose())
            if state_cache_mb:
                model.set_cache(LlamaRAMCache(capacity_bytes=state_cache_mb << 20))
            _MODELS[key] = model
            if len(_MODELS) == 1:
                atexit.register(_close_models)
        return _MODELS[key]


def _close_models() -> None:
    """Free the models before interpreter teardown, when llama.cpp's own finaliser would fail."""
    with _MODELS_LOCK:
        for model in _MODELS.values():
            with contextlib.suppress(Exception):
                model.close()
        _MODELS.clear()


REPLY_ROOM = 300  # context tokens left free for the reply when a prompt is cut to fit


def resolve_model(arg: str) -> Path:
    """The GGUF file for an embedded name or a path (see ``local_models.resolve``)."""
    return resolve(arg)[0]


class LlamaCppLLM:
    """ChatLLM over a local GGUF model. One request at a time (llama.cpp is not re-entrant)."""

    def __init__(self, arg: str, *, n_ctx: int | None = None, n_threads: int = 2,
                 temperature: float | None = None, max_tokens: int | None = None, repeat_penalty: float = 1.3,
                 redraws: int = 3, prompt: PromptShape | None = None, prefix_reuse: bool = True,
                 state_cache_mb: int = 0) -> None:
        self.path, spec = resolve(arg)
        self.name = f"llamacpp:{arg or DEFAULT_MODEL}"
        self.prompt: PromptShape = prompt or (spec.prompt if spec else "chat")
        if self.prompt not in GRAMMARS:
            raise LLMConfigError(f"llm_options.prompt must be one of {sorted(GRAMMARS)}, not {self.prompt!r}")
        self.n_ctx = n_ctx or (spec.n_ctx if spec else 2048)
        self.n_threads = n_threads
        self.temperature, self.max_tokens = temperature, max_tokens
        # Continuing a list, a small model mostly copies a line of it; penalising tokens it has
        # just seen raised new templates from 12 to 20 of 24 replies (SmolLM2, 1.1 -> 1.3).
        self.repeat_penalty = repeat_penalty
        # Even so it copies about half the time, so a line may not END on a template the request
        # says to avoid (see _no_known_ending). Should a sample still hit one (the grammar's length
        # limit), it is drawn again, up to this many times: cheap, llama.cpp keeps the prompt.
        self.redraws = redraws
        self.prefix_reuse, self.state_cache_mb = prefix_reuse, state_cache_mb
        # Each prompt shape has its own grammar, so its hash also tells the shapes apart; the
        # completion shape keeps its old id, so recorded SmolLM2 replies still replay.
        self.cache_id = (f"{self.name}|{self.path.stat().st_size}|rp={repeat_penalty}|rd={redraws}|"
                         f"{hash_text(_grammar_text(self.prompt))}")
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        return _load(self.path, self.n_ctx, self.n_threads, self.state_cache_mb if self.prefix_reuse else 0)

    def check(self) -> None:
        """Load the model now (and apply its chat template once), so a broken file or template
        fails in one line before any scoring work."""
        try:
            self.model  # noqa: B018
        except LLMConfigError:
            raise
        except Exception as err:
            raise LLMConfigError(f"llama.cpp could not load {self.path}: {err}") from None
        if self.prompt == "chat":
            try:
                with self._lock:
                    self.model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
            except Exception as err:
                raise LLMConfigError(f"llama.cpp cannot apply the chat template of {self.path.name}: "
                                     f"{type(err).__name__}: {err}; set llm_options.prompt='completion'") from None

    def _one(self, request: ChatRequest, seed: int, avoid: KnownLines) -> tuple[str, int, int, str]:
        from llama_cpp import LlamaGrammar, LogitsProcessorList

        temperature = request.temperature if self.temperature is None else self.temperature
        max_tokens = min(request.max_tokens if self.max_tokens is None else self.max_tokens, 256)
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed,
                                  "repeat_penalty": self.repeat_penalty}
        if request.shape == "template_line":
            kwargs["grammar"] = LlamaGrammar.from_string(_grammar_text(self.prompt), verbose=False)
            if avoid:
                kwargs["logits_processor"] = LogitsProcessorList([self._no_known_ending(avoid)])
        elif request.shape in REPLY_GRAMMARS:
            kwargs["grammar"] = LlamaGrammar.from_string(reply_grammar(request.shape), verbose=False)
        if not self.prefix_reuse:
            self.model.reset()  # forget the evaluated tokens: the whole prompt is evaluated again
        if request.shape == "template_line" and request.completion_prompt and self.prompt == "completion":
            out = self.model.create_completion(self._fit(request.completion_prompt), **kwargs)
            text = out["choices"][0]["text"]
        else:
            messages = self._fit_messages([{"role": m.role, "content": m.content} for m in request.messages])
            out = self.model.create_chat_completion(messages=messages, **kwargs)
            text = out["choices"][0]["message"]["content"] or ""
        usage = out.get("usage", {})
        return (text.strip(), int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                str(out["choices"][0].get("finish_reason") or ""))

    def _no_known_ending(self, avoid: KnownLines) -> Callable[[Any, Any], Any]:
        """A logits processor that forbids ending the line on a template to avoid. Only the tokens
        that can end a line (a newline, a final period) are checked, so a copy in the making is
        not cut short: the model must carry the line on past it ("a photo of the {} itself.")."""
        model, enders = self.model, _line_enders(self.model, grammar_alphabet(self.prompt))
        start: list[int] = []

        def process(input_ids: Any, logits: Any) -> Any:
            if not start:
                start.append(len(input_ids))  # the first call comes before any generated token
            line = model.detokenize(list(input_ids[start[0]:])).decode("utf-8", "ignore")
            for token, text in enders:
                ended = line + text
                if ended.split("\n")[0].strip() in avoid:
                    # A large finite penalty, not -inf: should the grammar allow nothing else (its
                    # length limit), the copy is still sampled (and redrawn) instead of llama.cpp
                    # aborting the process on a token the grammar cannot accept.
                    logits[token] -= 100.0
            return logits
        return process

    def _fit(self, prompt: str) -> str:
        """Keep the head line and as many of the last list lines as fit the context window."""
        budget = self.n_ctx - REPLY_ROOM
        if len(self.model.tokenize(prompt.encode())) <= budget:
            return prompt
        head, *lines = prompt.split("\n")
        while lines and len(self.model.tokenize("\n".join([head, *lines]).encode())) > budget:
            lines.pop(0)
        return "\n".join([head, *lines])

    def _fit_messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """Keep the opening (system prompt and first user turn: the task and the scored lists)
        and as many of the latest turns as fit; the oldest exchanges go first, in pairs so the
        turns still alternate."""
        # + a few tokens of chat markup per turn
        sizes = [len(self.model.tokenize(m["content"].encode(), add_bos=False)) + 8 for m in messages]
        n_open = next((i + 1 for i, m in enumerate(messages) if m["role"] == "user"), len(messages))
        total, first = sum(sizes), n_open  # messages[n_open:first] are dropped
        while len(messages) - first > 1 and total > self.n_ctx - REPLY_ROOM:
            total -= sizes[first] + sizes[first + 1]
            first += 2
        return messages[:n_open] + messages[first:]

    def chat(self, request: ChatRequest) -> ChatReply:
        started = time.perf_counter()
        base = request.seed if request.seed is not None else 0
        texts, prompt_tokens, completion_tokens, reasons = [], 0, 0, []
        avoid = KnownLines(request.avoid)
        draws = 0
        with self._lock:
            for i in range(max(1, request.n)):
                for redraw in range(self.redraws + 1):
                    # Distinct, reproducible seeds per sample and redraw.
                    text, pt, ct, reason = self._one(request, base + i + 7919 * redraw, avoid)
                    draws += 1
                    prompt_tokens, completion_tokens = prompt_tokens + pt, completion_tokens + ct
                    if text not in avoid:
                        break
                texts.append(text)
                reasons.append(reason)
        if not any(texts):
            raise LLMReplyError(f"{self.name} returned an empty reply")
        return ChatReply(tuple(texts), prompt_tokens, completion_tokens, self.name,
                         latency_s=time.perf_counter() - started, finish_reasons=tuple(reasons), draws=draws)


_ENDERS: dict[tuple[int, frozenset[str]], list[tuple[int, str]]] = {}


def _line_enders(model: Any, alphabet: frozenset[str]) -> list[tuple[int, str]]:
    """The vocabulary's tokens that can finish a template line (they hold a newline or end in '.')
    and that the grammar can write (all their characters are in its alphabet)."""
    key = (id(model), alphabet)
    if key not in _ENDERS:
        texts = ((i, model.detokenize([i]).decode("utf-8", "ignore")) for i in range(model.n_vocab()))
        _ENDERS[key] = [(i, t) for i, t in texts
                        if ("\n" in t or t.rstrip().endswith(".")) and alphabet.issuperset(t)]
    return _ENDERS[key]


class KnownLines:
    """Templates a reply must not be: the same words (case, spacing, punctuation aside), or a near
    copy (the proposers' degeneracy filter's 0.97 similarity rule), memoised per line."""

    def __init__(self, templates: Iterable[str], near_copy_ratio: float = 0.97) -> None:
        self.keys = frozenset(word_key(t) for t in templates)
        self.ratio = near_copy_ratio
        self._seen: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __contains__(self, line: object) -> bool:
        key = word_key(str(line))
        if key not in self._seen:
            # A ratio of r needs lengths within a factor r of each other: skip the rest cheaply.
            self._seen[key] = key in self.keys or any(
                abs(len(k) - len(key)) <= (1 - self.ratio) * (len(k) + len(key))
                and SequenceMatcher(None, key, k).ratio() >= self.ratio for k in self.keys)
        return self._seen[key]


def build(arg: str, *, options: Mapping[str, Any]) -> LlamaCppLLM:
    allowed = {"n_ctx", "n_threads", "temperature", "max_tokens", "repeat_penalty", "redraws", "prompt",
               "prefix_reuse", "state_cache_mb"}
    unknown = set(options) - allowed
    if unknown:
        raise LLMConfigError(f"unknown llamacpp option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return LlamaCppLLM(arg, **dict(options))
