#!/usr/bin/env bash
# Installs promptclimb and everything the embedded offline setting needs, on a fresh machine: a thin
# wrapper around the pip extras in pyproject.toml. Idempotent. `--dev` adds the test and lint tools,
# the peer optimizers and headless Chromium.
# Order matters: torch is pinned first so that no later package pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --quiet --disable-pip-version-check"
apt_install() {
  command -v apt-get >/dev/null || return 0
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Data sets shipped by Debian (Tux Paint stamp photos, Fashion-MNIST).
if [ ! -d /usr/share/tuxpaint/stamps ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then
  apt_install tuxpaint-stamps-default dataset-fashion-mnist
fi

$PIP torch==2.13.0
EXTRAS="offline,clip,llm,llm-server,report"
if [ "${1:-}" = "--dev" ]; then EXTRAS="$EXTRAS,peers,dev"; fi
# llama-cpp-python has no prebuilt wheel here: the first source build takes about 5 minutes.
# It is built for this CPU (-march=native) but without Intel AMX: on Sapphire Rapids machines the
# AMX kernels segfault in the first decode of the Q4_K_M models (ggml-org/llama.cpp#20824; seen
# here on 2026-12-04, a Xeon with AMX behind a hypervisor). AVX-512 and the other native paths stay.
if [ "$(uname -m)" = x86_64 ] && echo | cc -mno-amx-tile -E - >/dev/null 2>&1; then
  NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  export CFLAGS="${CFLAGS:-} $NO_AMX" CXXFLAGS="${CXXFLAGS:-} $NO_AMX"
fi
CMAKE_ARGS="-DLLAVA_BUILD=OFF" $PIP -e ".[$EXTRAS]"
# Not in an extra because their declared dependencies break the CPU setting (pyproject.toml says why).
$PIP --no-deps clip-benchmark==1.6.2

# Headless Chromium and its WebDriver for the HTML report and dashboard tests.
if [ "${1:-}" = "--dev" ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  apt_install chromium chromium-driver
fi
