#!/usr/bin/env bash
# Makes the Python virtual environment the tests use to check shardlm against real consumers
# (transformers, TensorBoard, llama.cpp, PyTorch baselines): BUILD_DIR/test-venv, from PyPI.
# Nothing in it enters the training path. Quick when it is up to date: the requirement files'
# hash is kept in the venv and the install runs only when they change.
#   scripts/test-venv.sh BUILD_DIR        prints the venv's python on the last line
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$1/test-venv"
requirements=("$here"/tests/python/requirements*.txt)
# llama-cpp-python compiles llama.cpp (an hour on a loaded 2-core machine): on request only.
if [ "${SHARDLM_TEST_LLAMACPP:-0}" = 1 ]; then
  requirements+=("$here"/tests/python/optional/requirements-llamacpp.txt)
fi
stamp="$venv/.shardlm-requirements"
want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
"$here"/scripts/install-deps.sh python3-venv >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
# Requirements marked `# keep-wheel` build from source (llama-cpp-python compiles llama.cpp):
# their wheels are kept in BUILD_DIR/wheels, so a new venv or a changed requirement file
# installs them without building again.
wheels="$1/wheels"
mkdir -p "$wheels"
for spec in $(grep -h '# keep-wheel' "${requirements[@]}" | sed 's/#.*//'); do
  name=$(echo "${spec%%==*}" | tr '-' '_')
  version=${spec##*==}
  if ! ls "$wheels/${name}-${version}-"*.whl >/dev/null 2>&1; then
    echo "$(basename "$0"): building the $spec wheel once into $wheels" >&2
    "$venv/bin/pip" wheel --disable-pip-version-check -q --no-deps -w "$wheels" "$spec" >&2
  fi
done
for r in "${requirements[@]}"; do
  echo "$(basename "$0"): installing $(basename "$r") into $venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q --find-links "$wheels" -r "$r" >&2
done
echo "$want" > "$stamp"
echo "$venv/bin/python"
