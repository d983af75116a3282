#!/usr/bin/env bash
# shardlm's train step against the same model in PyTorch 2.x from PyPI (CPU), on this machine,
# alternating sides round by round: same model, batch, sequence length and thread count, the
# median of the rounds. PyTorch gets its best: MKL (PyPI's wheels), scaled_dot_product_attention,
# fused AdamW, and both eager and torch.compile (the faster of the two counts in each round).
#   usage: bench/compare_pytorch.sh BUILD_DIR [THREADS]      (THREADS defaults to nproc)
#   env:   CONFIGS  "preset:seq_len:micro_batch ..."
#                   default "mini:256:8 gpt2:256:4 gpt2:1024:1 llama-tiny:256:8"
#          STEPS / WARMUP   timed / warm-up steps per run (compilation happens in warm-up) 5 / 2
#          ROUNDS           rounds of both sides, default 3;   COMPILE=0 skips torch.compile
#          LOG_DIR          where the full outputs go, default a new temp directory
# PyTorch comes from BUILD_DIR/test-venv (scripts/test-venv.sh, tests/python/requirements-bench.txt).
# shardlm runs at the ISA level it dispatches to (SHARDLM_ISA=avx2 forces a lower one).
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
build_dir=$1
threads=${2:-$(nproc)}
bench="$build_dir/bench/bench_train_step"
[[ -x $bench ]] || { echo "compare_pytorch.sh: $bench not found; build it with" \
  "cmake --build $build_dir --target bench_train_step" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
python=$("$here/../scripts/test-venv.sh" "$build_dir" | tail -n 1)
configs=${CONFIGS:-"mini:256:8 gpt2:256:4 gpt2:1024:1 llama-tiny:256:8"}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-3}
modes=(eager)
[[ ${COMPILE:-1} == 1 ]] && modes+=(compile)
log_dir=${LOG_DIR:-$(mktemp -d /tmp/compare_pytorch.XXXXXX)}
mkdir -p "$log_dir"

# field KEY FILE: the value of KEY= on the file's "result:" or "config:" lines.
field() { grep -E '^(result|config):' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -n 1; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; threads $threads;" \
  "torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "load before: $(uptime)"
echo "logs: $log_dir"

summary=()
for config in $configs; do
  IFS=: read -r model seq_len batch <<< "$config"
  s_rates="" s_cpu="" p_rates="" p_cpu="" p_modes="" s_log=""
  for ((round = 1; round <= rounds; ++round)); do
    s_log="$log_dir/shardlm_${model}_T${seq_len}_r$round.txt"
    echo; echo "== $model B=$batch T=$seq_len: shardlm (round $round, load $(cut -d' ' -f1 /proc/loadavg))"
    OMP_NUM_THREADS=$threads "$bench" --model "$model" --seq-len "$seq_len" --micro-batch "$batch" \
      --steps "$steps" --warmup-steps "$warmup" > "$s_log"
    grep -E '^(config|result|tokens/s)' "$s_log"
    s_rates+=" $(field tokens_per_s "$s_log")"; s_cpu+=" $(field cpu_tokens_per_s "$s_log")"
    shapes=(--family "$(field family "$s_log")" --n-layer "$(field n_layer "$s_log")"
            --n-head "$(field n_head "$s_log")" --n-kv-head "$(field n_kv_head "$s_log")"
            --n-embd "$(field n_embd "$s_log")" --intermediate-size "$(field intermediate_size "$s_log")"
            --vocab-size "$(field vocab_size "$s_log")" --padded-vocab "$(field padded_vocab "$s_log")"
            --max-seq-len "$(field max_seq_len "$s_log")" --rope-theta "$(field rope_theta "$s_log")"
            --norm-eps "$(field norm_eps "$s_log")" --tie-embeddings "$(field tie_embeddings "$s_log")"
            --seq-len "$seq_len" --micro-batch "$batch" --threads "$threads" --steps "$steps"
            --warmup-steps "$warmup")
    best="" best_cpu="" best_mode=""
    for mode in "${modes[@]}"; do
      p_log="$log_dir/pytorch_${model}_T${seq_len}_${mode}_r$round.txt"
      echo "== $model B=$batch T=$seq_len: PyTorch $mode (round $round, load $(cut -d' ' -f1 /proc/loadavg))"
      flag=(); [[ $mode == compile ]] && flag=(--compile)
      OMP_NUM_THREADS=$threads "$python" "$here/pytorch_train_step.py" "${shapes[@]}" "${flag[@]}" \
        > "$p_log" 2>&1 || { echo "PyTorch $mode failed: see $p_log"; continue; }
      grep -E '^(config|result)' "$p_log"
      rate=$(field tokens_per_s "$p_log")
      if [[ -z $best ]] || awk -v a="$rate" -v b="$best" 'BEGIN { exit !(a > b) }'; then
        best=$rate; best_cpu=$(field cpu_tokens_per_s "$p_log"); best_mode=$mode
      fi
    done
    p_rates+=" $best"; p_cpu+=" $best_cpu"; p_modes+=" $best_mode"
  done
  s=$(echo "$s_rates" | median); sc=$(echo "$s_cpu" | median)
  p=$(echo "$p_rates" | median); pc=$(echo "$p_cpu" | median)
  summary+=("$(awk -v m="$model T=$seq_len B=$batch" -v s="$s" -v sc="$sc" -v p="$p" -v pc="$pc" \
    -v f="$(field flops_per_token "$s_log")" -v peak="$(field peak_gflops "$s_log")" \
    -v isa="$(field isa "$s_log")" -v modes="$(echo $p_modes | tr ' ' ',')" 'BEGIN {
      printf "%-22s | %8.1f %8.1f %7.1f %5.1f%% | %8.1f %8.1f | %5.2fx %5.2fx | %s | %s",
        m, s, sc, sc * f * 1e-9, 100 * sc * f * 1e-9 / peak, p, pc, s / p, sc / pc, isa, modes }')")
done

echo
echo "load after: $(uptime)"
echo "Medians over $rounds rounds. tok/s: mean over the timed steps; cpu: tokens per CPU-second x threads"
echo "(what the threads reach when not descheduled; the fairer figure on a shared machine)."
echo "GFLOP/s and %peak from the cpu figure: model FLOPs x tok/s over the running ISA level's FMA peak."
printf '%-22s | %8s %8s %7s %6s | %8s %8s | %6s %6s | %s | %s\n' config "shardlm" cpu GFLOP/s "%peak" \
  "PyTorch" cpu ratio cpu isa "PyTorch mode per round"
for line in "${summary[@]}"; do echo "$line"; done
