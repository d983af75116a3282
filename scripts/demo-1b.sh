#!/usr/bin/env bash
# `make demo-1b`: a Llama of more than a billion parameters (the llama-3.2-1b shape with a 32k
# vocabulary, 1.04 B) trained on this machine over local MPI ranks, with the layout
# `shardlm plan` picks for the memory there is; then the checkpoint is verified and training
# continues from it on another layout. Not part of `make test` (about half an hour on 2 cores).
#   scripts/demo-1b.sh BUILD_DIR        outputs in runs/demo-1b/, replaced on every run
# Fails unless the training loss falls, every rank's measured peak stays within the plan, the
# checkpoint verifies and the other layout resumes from it.
# Environment (defaults): DEMO_1B_MODEL (llama-3.2-1b), DEMO_1B_VOCAB (32768), DEMO_1B_RANKS (4),
# DEMO_1B_STEPS (20), DEMO_1B_BATCH (2 sequences a step), DEMO_1B_SEQ (128 tokens).
set -euo pipefail
build=${1:-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
shardlm="$repo/$build/shardlm"
out="$repo/runs/demo-1b"
model=${DEMO_1B_MODEL:-llama-3.2-1b}
vocab=${DEMO_1B_VOCAB:-32768}
ranks=${DEMO_1B_RANKS:-4}
steps=${DEMO_1B_STEPS:-20}
batch=${DEMO_1B_BATCH:-2}
seq=${DEMO_1B_SEQ:-128}
rm -rf "$out"
mkdir -p "$out"
mpirun_flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpirun_flags+=(--allow-run-as-root)
stamp() { date +%s; }
started=$(stamp)

echo "== 1/6 tokenizer (4096 pieces) and token shards of data/tinyshakespeare.txt"
"$shardlm" tokenizer train --input "$repo/data/tinyshakespeare.txt" --vocab-size 4096 \
  --model-prefix "$out/tokenizer" >/dev/null
"$shardlm" data prepare --input "$repo/data/tinyshakespeare.txt" --tokenizer "$out/tokenizer.model" \
  --out "$out/data" --val-fraction 0.1 --quiet

echo "== 2/6 the model: $model with a $vocab-entry vocabulary, $seq tokens"
"$shardlm" train --model "$model" --vocab-size "$vocab" --max-seq-len "$seq" --data synthetic \
  --print-config --world-size "$ranks" --out "$out/unused" >"$out/model.ini"
sed -n '/^\[model\]/,$p' "$out/model.ini"

echo "== 3/6 shardlm plan: $ranks ranks on this machine, global batch $batch"
"$shardlm" plan --model "$out/model.ini" --seq-len "$seq" --global-batch "$batch" \
  --gpus-per-node "$ranks" --device cpu --top 5 | tee "$out/plan.txt"
"$shardlm" plan --model "$out/model.ini" --seq-len "$seq" --global-batch "$batch" \
  --gpus-per-node "$ranks" --device cpu --json >"$out/plan.json"
# The chosen layout's flags, and one other layout to continue on (pipeline instead of tensor
# parallel, or the other way round).
read -r -a layout < <(python3 - "$out/plan.json" <<'PY'
import json, sys
best = json.load(open(sys.argv[1]))["ranked"][0]
flags = ["--tp", best["tp"], "--pp", best["pp"], "--zero", best["zero"], "--recompute",
         best["recompute"], "--micro-batch", best["micro_batch"]]
if best["pp_layers"]:
    flags += ["--pp-layers", ",".join(map(str, best["pp_layers"]))]
print(" ".join(map(str, flags)))
PY
)
tp=${layout[1]}
other=(--tp "$tp" --pp 1 --micro-batch 1)
[ "$tp" -ge 2 ] && other=(--tp $((tp / 2)) --pp 2 --micro-batch 1)

train_flags=(--config "$out/model.ini" --data "$out/data" --out "$out/run" --seq-len "$seq"
  --global-batch "$batch" --lr 6e-4 --min-lr 6e-5 --warmup 4 --eval-every 0 --eval-steps 2
  --log-every 1 --save-every 0 --keep-last 1 --device cpu)
echo "== 4/6 training $steps steps with the plan's layout: ${layout[*]}"
t0=$(stamp)
mpirun "${mpirun_flags[@]}" -np "$ranks" "$shardlm" train "${train_flags[@]}" "${layout[@]}" \
  --steps "$steps"
train_s=$(($(stamp) - t0))

echo "== 5/6 verify the checkpoint"
t0=$(stamp)
"$shardlm" ckpt verify "$out/run"
verify_s=$(($(stamp) - t0))

echo "== 6/6 continue 2 steps on another layout: ${other[*]}"
t0=$(stamp)
mpirun "${mpirun_flags[@]}" -np "$ranks" "$shardlm" train "${train_flags[@]}" "${other[@]}" \
  --steps $((steps + 2)) --resume auto
resume_s=$(($(stamp) - t0))

python3 - "$out" "$steps" "$train_s" "$verify_s" "$resume_s" "$(($(stamp) - started))" <<'PY'
import json, sys
out = sys.argv[1]
steps_first, train_s, verify_s, resume_s, total_s = map(int, sys.argv[2:])
rows = [json.loads(l) for l in open(out + "/run/metrics.jsonl")]
train = [r for r in rows if "loss" in r and r["step"] <= steps_first]
plan = json.load(open(out + "/plan.json"))
best = plan["ranked"][0]
planned = best["peak_bytes"]["total"]
measured = max(max(r["peak_alloc_bytes"]) for r in train)
rss = max(r["peak_mem_bytes"] for r in train)
gib = 2 ** 30
print(f"{plan['parameters'] / 1e9:.3f} B parameters; layout tp {best['tp']} pp {best['pp']} "
      f"dp {best['dp']} zero {best['zero']} recompute {best['recompute']}")
print(f"training loss {train[0]['loss']:.3f} (step {train[0]['step']}) -> {train[-1]['loss']:.3f} "
      f"(step {train[-1]['step']})")
print(f"peak allocated per rank {measured / gib:.2f} GiB, planned {planned / gib:.2f} GiB "
      f"({100 * (measured / planned - 1):+.1f}%); peak RSS of a rank {rss / gib:.2f} GiB")
print(f"wall: training {train_s} s, verify {verify_s} s, 2 steps on the other layout "
      f"{resume_s} s, all {total_s} s")
if not train[-1]["loss"] < train[0]["loss"]:
    sys.exit("demo-1b: the training loss did not fall")
if measured > planned * 1.10:
    sys.exit("demo-1b: the measured peak is more than 10% above the plan")
PY
