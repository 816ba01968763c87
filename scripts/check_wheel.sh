#!/usr/bin/env bash
# CI step: build promptclimb's wheel, install it with [offline] into a fresh venv (torch pinned
# first, then the short --no-deps list of scripts/install.sh) and run a small real job there:
# the ConSE scorer on Tux Paint photos with the scripted LLM. Prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
work=$(mktemp -d /tmp/promptclimb-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT
python -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" .
python -m venv "$work/venv"
PIP="$work/venv/bin/python -m pip install --quiet --disable-pip-version-check"
$PIP torch==2.13.0
wheel=$(ls "$work"/dist/promptclimb-*.whl)
CMAKE_ARGS="-DLLAVA_BUILD=OFF" $PIP "$wheel[offline]"
$PIP --no-deps clip-benchmark==1.6.2
cd "$work"  # away from the checkout: the job must run from the installed wheel
env -u PYTHONPATH "$work/venv/bin/python" -c "import promptclimb, sentence_transformers; print(promptclimb.__file__)" \
  | grep -q "$work/venv/"
env -u PYTHONPATH "$work/venv/bin/promptclimb" optimize --task tuxpaint --scorer conse --llm scripted \
  --method hill_climb --seed 1 --shots 1 --max-queries 4 --cache-dir "$work/cache" --out "$work/run" --quiet
env -u PYTHONPATH "$work/venv/bin/promptclimb" show "$work/run" --json | "$work/venv/bin/python" -c \
  "import json, sys; s = json.load(sys.stdin); assert s['n_complete'] == 4 and s['final_test_score'] is not None, s"
echo "wheel check: built, installed with [offline] in a fresh venv, ran a real job in $(( $(date +%s) - started )) s"
