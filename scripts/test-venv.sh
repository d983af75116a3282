#!/usr/bin/env bash
# Makes the Python virtual environment the tests use to check shardlm against real consumers
# (transformers, TensorBoard, llama.cpp, PyTorch baselines): BUILD_DIR/test-venv, from PyPI.
# Nothing in it enters the training path. Quick when it is up to date: the hash of the
# requirement files and build flags is kept in the venv and the install runs only when it changes.
#   scripts/test-venv.sh BUILD_DIR        prints the venv's python on the last line
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$1/test-venv"
# llama-cpp-python compiles llama.cpp (about 10 CPU-minutes, once per build folder: the wheel is
# kept). SHARDLM_TEST_LLAMACPP=0 leaves it out; the convert_gguf-llamacpp-* tests then skip.
requirements=()
for r in "$here"/tests/python/requirements*.txt; do
  [ "${SHARDLM_TEST_LLAMACPP:-1}" = 0 ] && [[ $r == *requirements-llamacpp.txt ]] && continue
  requirements+=("$r")
done
# llama.cpp is built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build on an
# AMX machine (Sapphire Rapids) runs ggml's AMX q8_0 matmul, which segfaults on our small q8_0
# files (ggml_backend_amx_mul_mat, ggml-org/llama.cpp#20824), and the consumer check should not
# depend on which CPU runs it. LLAVA_BUILD=OFF: the multimodal part is not needed here.
llama_flags="-DLLAVA_BUILD=OFF"
[ "$(uname -m)" = x86_64 ] &&
  llama_flags+=" -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
llama_flags+=" ${CMAKE_ARGS:-}"
stamp="$venv/.shardlm-requirements"
want=$( (cat "${requirements[@]}" && echo "$llama_flags") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
"$here"/scripts/install-deps.sh python3-venv >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
# Requirements marked `# keep-wheel` build from source (llama-cpp-python compiles llama.cpp):
# their wheels are kept in BUILD_DIR/wheels/<hash of the flags>, so a new venv or a changed
# requirement file installs them without building again, and new flags build a new wheel.
wheels="$1/wheels/$(echo "$llama_flags" | sha256sum | cut -c1-12)"
mkdir -p "$wheels"
for spec in $(grep -h '# keep-wheel' "${requirements[@]}" | sed 's/#.*//'); do
  name=$(echo "${spec%%==*}" | tr '-' '_')
  version=${spec##*==}
  if ! ls "$wheels/${name}-${version}-"*.whl >/dev/null 2>&1; then
    echo "$(basename "$0"): building the $spec wheel once into $wheels" >&2
    # --no-cache-dir: pip's own wheel cache ignores CMAKE_ARGS.
    CMAKE_ARGS="$llama_flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
      "$venv/bin/pip" wheel --disable-pip-version-check -q --no-cache-dir --no-deps -w "$wheels" "$spec" >&2
  fi
done
for r in "${requirements[@]}"; do
  echo "$(basename "$0"): installing $(basename "$r") into $venv" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q --find-links "$wheels" -r "$r" >&2
done
# The same version built with other flags may be installed already (pip kept it above): the
# wheel of these flags replaces it.
for spec in $(grep -h '# keep-wheel' "${requirements[@]}" | sed 's/#.*//'); do
  name=$(echo "${spec%%==*}" | tr '-' '_')
  "$venv/bin/pip" install --disable-pip-version-check -q --no-deps --force-reinstall \
    "$wheels/${name}-${spec##*==}-"*.whl >&2
done
echo "$want" > "$stamp"
echo "$venv/bin/python"
