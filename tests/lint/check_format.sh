#!/usr/bin/env bash
# Every C++/CUDA source under src/, tests/ and bench/ is clang-format clean (.clang-format at the
# repository root). Lists the files that are not; fix with `clang-format -i FILE`.
#   check_format.sh REPO_ROOT
set -uo pipefail
cd "$1" || exit 2
command -v clang-format >/dev/null || { echo "clang-format is not installed"; exit 77; }
bad=0
while IFS= read -r -d '' f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=$((bad + 1)); }
done < <(find src tests bench \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0)
echo "check_format: $bad file(s) not formatted ($(clang-format --version))"
[ "$bad" -eq 0 ]
