#!/usr/bin/env bash
# The main job behind `make run`: generate text with the model that ships in models/tiny-v4.
# Usage: scripts/run.sh BUILD_DIR   (make run passes build/<preset>)
set -euo pipefail
build=${1:-build/release}
cd "$(dirname "$0")/.."
frugal="$build/src/cli/frugal"
model=models/tiny-v4
prompt=${FRUGAL_PROMPT:-"ROMEO:"}

echo "== frugal run: ${model} (DeepSeek-V4 architecture, trained on tinyshakespeare), prompt '${prompt}'"
"$frugal" run -m "$model" -p "$prompt" -n "${FRUGAL_TOKENS:-160}" --temp 0.8 --top-p 0.95 --seed 1
echo
echo "== frugal mem: memory plan for a 1M-token context on the same model"
"$frugal" mem -m "$model" --ctx 1048576
