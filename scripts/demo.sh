#!/usr/bin/env bash
# `make demo`: the whole pipeline on the bundled Tiny Shakespeare, on this machine:
#   tokenizer -> token shards -> training on 4 local MPI ranks (tp2 x pp2) -> validation -> a
#   generated sample -> a plot of the run (runs/demo/plot.png). Fails unless validation loss
#   falls by at least 40% from step 0.
# Usage: scripts/demo.sh BUILD_DIR     (outputs go to runs/demo/, replaced on every run)
#   DEMO_CONFIG=FILE the training config (configs/demo.ini); DEMO_NAME=NAME writes runs/NAME/
#   instead (`make demo-llama`: configs/demo-llama.ini into runs/demo-llama/).
set -euo pipefail
build=${1:-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
shardlm="$repo/$build/shardlm"
out="$repo/runs/${DEMO_NAME:-demo}"
ranks=${DEMO_RANKS:-4}
rm -rf "$out"
mkdir -p "$out"

mpirun_flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpirun_flags+=(--allow-run-as-root)

echo "== 1/4 tokenizer: SentencePiece BPE, 1024 pieces, on data/tinyshakespeare.txt"
"$shardlm" tokenizer train --input "$repo/data/tinyshakespeare.txt" --vocab-size 1024 \
  --model-prefix "$out/tokenizer"

echo "== 2/4 token shards (10% of the text held out for validation)"
"$shardlm" data prepare --input "$repo/data/tinyshakespeare.txt" --tokenizer "$out/tokenizer.model" \
  --out "$out/data" --val-fraction 0.1 --quiet
"$shardlm" data inspect "$out/data" | tail -n 4

echo "== 3/4 training on $ranks local ranks (tp2 x pp2), config ${DEMO_CONFIG:-configs/demo.ini}"
# Each rank takes its share of the cores (shardlm train's default; 1 thread each on 2 cores).
mpirun "${mpirun_flags[@]}" -np "$ranks" "$shardlm" train \
  --config "${DEMO_CONFIG:-$repo/configs/demo.ini}" --data "$out/data" --out "$out/run" "${@:2}"

echo "== 4/4 sample from the trained model"
"$shardlm" generate --checkpoint "$out/run" --prompt "ROMEO:" --max-tokens 120 --temperature 0.8 \
  --top-k 40 --seed 1

echo "== plot of the run (train/val loss, throughput, MFU, step-time split)"
"$shardlm" plot "$out/run" -o "$out/plot.png" --title "make demo: Tiny Shakespeare, 4 ranks (tp2 x pp2)"
echo "plot: $out/plot.png    (TensorBoard: tensorboard --logdir $out/run/tensorboard)"

# The demo must visibly learn: first vs last validation loss from the metrics.
python3 - "$out/run/metrics.jsonl" <<'PY'
import json, sys
evals = [json.loads(l) for l in open(sys.argv[1]) if '"val_loss"' in l]
first, last = evals[0], evals[-1]
drop = 1 - last["val_loss"] / first["val_loss"]
print(f"validation loss {first['val_loss']:.3f} (step {first['step']}) -> {last['val_loss']:.3f} "
      f"(step {last['step']}): -{100 * drop:.0f}%, final val bits/byte {last['val_bpb']:.3f}")
if drop < 0.40:
    sys.exit(f"demo: validation loss fell by only {100 * drop:.0f}% (need >= 40%)")
PY
