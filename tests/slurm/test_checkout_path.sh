#!/usr/bin/env bash
# The SLURM tests from an awkward checkout: a copy of the tree (every file git tracks or would
# track) under a 0700 folder whose name has a space, with a read-only folder beside it, runs one
# SLURM job there: the private cluster's start and stop, slurm/shardlm-cpu.sbatch through
# launch/shardlm-launch, a SIGUSR1 save + requeue, and a resume that ends bit-identical to the
# uninterrupted run (tests/slurm/test_cpu_template.sh signal, from the copy).
# User munge cannot traverse a 0700 folder, and unquoted paths break on spaces: this is what
# `make test` from `git clone` into `mktemp -d` or /root/... needs.
#
#   test_checkout_path.sh SCRATCH_DIR TRAINER_BIN CONFIG
#
# Environment: as test_cpu_template.sh (REFERENCE, RANKS, SAVE_EVERY, MPIRUN_ARGS).
set -euo pipefail
usage="usage: test_checkout_path.sh SCRATCH_DIR TRAINER_BIN CONFIG"
scratch=${1:?$usage}
bin=$(realpath "${2:?$usage}")
config=$(realpath "${3:?$usage}")
repo=$(cd "$(dirname "$0")/../.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "needs root (the SLURM cluster); skipping"; exit 77; }
rm -rf "$scratch"
private="$scratch/private folder"
checkout="$private/shard lm"
mkdir -p "$checkout/build dir" "$scratch/shared"
chmod 0700 "$private"
chmod 0555 "$scratch/shared"

# The tree as a clone would have it (git ls-files: tracked and untracked-but-not-ignored files).
git -C "$repo" ls-files -z --cached --others --exclude-standard |
  (cd "$repo" && xargs -0 cp --parents -t "$checkout" 2>/dev/null) ||
  { echo "FAIL: could not copy the tree into $checkout" >&2; exit 1; }
cp "$bin" "$checkout/build dir/shardlm"
cp "$config" "$checkout/build dir/config.ini"

echo "checkout at '$checkout' (mode $(stat -c %a "$private")), shared/ read-only beside it"
export LAUNCHER=shardlm-launch
"$checkout/tests/slurm/test_cpu_template.sh" signal "$private/e2e scratch" \
  "$checkout/build dir/shardlm" "$checkout/build dir/config.ini"
