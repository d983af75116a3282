#!/usr/bin/env bash
# Exit 0 when two checkpoint folders hold the same weights, bit for bit; print the differences
# and exit 1 otherwise. Both must come from the same layout (rank count, TP/PP/DP), as a resumed
# run and its uninterrupted twin do: then every shard file has a twin of the same name.
#   compare_checkpoints.sh CKPT_A CKPT_B
# *.h5 files are compared by value with h5diff (exact: no tolerance given), so HDF5's object
# timestamps do not matter; for the same reason the whole-file checksums of the files (the
# manifest's /files/crc32c and manifest.crc32c, which cover those timestamps too) are skipped; every other file byte for byte with cmp, except names matching the
# shell patterns in CKPT_COMPARE_IGNORE (space-separated, e.g. "manifest.json" when a manifest
# records wall-clock times). To compare checkpoints of different layouts, consolidate both with
# `shardlm ckpt consolidate` first and compare the two outputs with this script.
set -euo pipefail
a=${1:?usage: compare_checkpoints.sh CKPT_A CKPT_B}
b=${2:?usage: compare_checkpoints.sh CKPT_A CKPT_B}
[ -d "$a" ] || { echo "compare_checkpoints: $a is not a folder" >&2; exit 1; }
[ -d "$b" ] || { echo "compare_checkpoints: $b is not a folder" >&2; exit 1; }
ignore="manifest.crc32c ${CKPT_COMPARE_IGNORE:-}"

ignored() {
  local name=$1 pattern
  for pattern in $ignore; do
    # shellcheck disable=SC2053  # pattern match on purpose
    [[ $name == $pattern ]] && return 0
  done
  return 1
}

list_files() { (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort); }

if ! diff <(list_files "$a") <(list_files "$b") >/dev/null; then
  echo "compare_checkpoints: different files in $a and $b:" >&2
  diff <(list_files "$a") <(list_files "$b") >&2 || true
  exit 1
fi
differ=0 compared=0
while IFS= read -r f; do
  if ignored "$(basename "$f")"; then continue; fi
  compared=$((compared + 1))
  case "$f" in
    *.h5)
      if ! h5diff -q --exclude-path /files/crc32c "$a/$f" "$b/$f" >/dev/null 2>&1; then
        echo "compare_checkpoints: $f differs:" >&2
        h5diff -r --exclude-path /files/crc32c "$a/$f" "$b/$f" 2>&1 | head -n 20 >&2 || true
        differ=1
      fi
      ;;
    *)
      if ! cmp -s "$a/$f" "$b/$f"; then
        echo "compare_checkpoints: $f differs" >&2
        differ=1
      fi
      ;;
  esac
done < <(list_files "$a")
[ $compared -gt 0 ] || { echo "compare_checkpoints: nothing to compare in $a" >&2; exit 1; }
[ $differ -eq 0 ] || exit 1
echo "compare_checkpoints: $compared files identical ($a vs $b)"
