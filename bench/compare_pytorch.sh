#!/usr/bin/env bash
# shardlm's train step against the same GPT-2 in PyTorch (CPU), on this machine, one after the
# other: same model, batch, sequence length and thread count. Builds nothing.
#   usage: bench/compare_pytorch.sh BUILD_DIR [THREADS]      (THREADS defaults to nproc)
#   env:   CONFIGS  "preset:micro_batch ..."   default "mini:8 gpt2:4"; T = SEQ_LEN, default 256
#          STEPS / WARMUP   timed / warm-up steps per run    default 5 / 2
#          ROUNDS           repeat everything, keep each side's best run (noisy machines), default 1
#          PYTORCH_REFERENCE_BLAS=1   also time PyTorch on the reference (netlib) BLAS
#          LOG_DIR          where the full outputs go, default a new temp directory
# Debian's python3-torch does its fp32 matmuls in whatever libblas.so.3 resolves to. PyTorch
# runs once per BLAS set-up (below) and its best run counts. Debian's OpenBLAS builds are used
# through LD_LIBRARY_PATH when they are installed but not the system's choice; OpenBLAS 0.3.21
# does not recognise every AVX-512 CPU and may fall back to generic kernels, hence the
# OPENBLAS_CORETYPE=SKYLAKEX run. The reference (netlib) BLAS is skipped by default: it is
# 5-10x slower than OpenBLAS and would take minutes per step.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
build_dir=$1
threads=${2:-$(nproc)}
bench="$build_dir/bench/bench_train_step"
[[ -x $bench ]] || { echo "compare_pytorch.sh: $bench not found; build it with" \
  "cmake --build $build_dir --target bench_train_step" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
configs=${CONFIGS:-"mini:8 gpt2:4"}
seq_len=${SEQ_LEN:-256}
steps=${STEPS:-5}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-1}
log_dir=${LOG_DIR:-$(mktemp -d /tmp/compare_pytorch.XXXXXX)}
mkdir -p "$log_dir"

# field KEY FILE: the value of KEY= on the file's "result:" or "config:" lines.
field() { grep -E '^(result|config):' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n 1; }
# better A B: 1 when A > B (B may be empty).
better() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a + 0 > b + 0) ? 1 : 0 }'; }

# The PyTorch BLAS set-ups, "name|arguments for env(1)": the system's libblas.so.3 if it is
# OpenBLAS, and each of Debian's OpenBLAS builds that is installed (pthreads, OpenMP) with its
# own CPU detection, plus OPENBLAS_CORETYPE=SKYLAKEX where the detection missed AVX-512.
probe_blas() {  # env arguments -> "libraries core" as pytorch_train_step.py reports them
  env "$@" "$python" -c "import sys; sys.path.insert(0, '$here'); import pytorch_train_step as p; print(*p.loaded_blas())"
}
variants=()
add_openblas() {  # name, env arguments that select it
  local name=$1; shift
  local core; core=$(probe_blas -u OPENBLAS_CORETYPE "$@" | awk '{ print $2 }')
  variants+=("$name, detected core $core|-u OPENBLAS_CORETYPE $*")
  case $core in
    SkylakeX|Cooperlake|SapphireRapids) ;;
    *) variants+=("$name, SKYLAKEX|OPENBLAS_CORETYPE=SKYLAKEX $*") ;;
  esac
}
system_blas=$(probe_blas -u OPENBLAS_CORETYPE | awk '{ print $1 }')
if [[ $system_blas == *openblas* ]]; then
  add_openblas "system OpenBLAS"
elif [[ ${PYTORCH_REFERENCE_BLAS:-0} == 1 ]]; then
  variants+=("system BLAS ($system_blas)|-u OPENBLAS_CORETYPE")
else
  echo "note: the system libblas.so.3 is $system_blas (reference BLAS): skipped (PYTORCH_REFERENCE_BLAS=1 times it)"
fi
for kind in pthread openmp; do
  dir=/usr/lib/x86_64-linux-gnu/openblas-$kind
  [[ -e $dir/libblas.so.3 && $system_blas != "$dir"/* ]] || continue
  add_openblas "OpenBLAS $kind" "LD_LIBRARY_PATH=$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
[[ ${#variants[@]} -gt 0 ]] || { echo "compare_pytorch.sh: no fast BLAS for PyTorch (apt-get install" \
  "libopenblas0-pthread or libopenblas0-openmp), or set PYTORCH_REFERENCE_BLAS=1" >&2; exit 2; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; threads $threads;" \
  "torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "load before: $(uptime)"
echo "logs: $log_dir"

summary=()
for config in $configs; do
  model=${config%%:*}
  batch=${config##*:}
  best_s="" best_s_log="" best_p="" best_p_log="" best_p_name=""
  for ((round = 1; round <= rounds; ++round)); do
    s_log="$log_dir/shardlm_${model}_r$round.txt"
    echo; echo "== $model B=$batch T=$seq_len: shardlm (round $round)"
    OMP_NUM_THREADS=$threads "$bench" --model "$model" --seq-len "$seq_len" --micro-batch "$batch" \
      --steps "$steps" --warmup-steps "$warmup" | tee "$s_log"
    if [[ $(better "$(field tokens_per_s "$s_log")" "$best_s") == 1 ]]; then
      best_s=$(field tokens_per_s "$s_log"); best_s_log=$s_log
    fi
    shapes=(--n-layer "$(field n_layer "$s_log")" --n-head "$(field n_head "$s_log")"
            --n-embd "$(field n_embd "$s_log")" --vocab-size "$(field vocab_size "$s_log")"
            --padded-vocab "$(field padded_vocab "$s_log")" --max-seq-len "$(field max_seq_len "$s_log")"
            --seq-len "$seq_len" --micro-batch "$batch" --threads "$threads" --steps "$steps" --warmup-steps "$warmup")
    for i in "${!variants[@]}"; do
      name=${variants[$i]%%|*}
      read -r -a environment <<< "${variants[$i]#*|}"
      p_log="$log_dir/pytorch_${model}_v${i}_r$round.txt"
      echo; echo "== $model B=$batch T=$seq_len: PyTorch, $name (round $round)"
      env "${environment[@]}" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" \
        "$python" "$here/pytorch_train_step.py" "${shapes[@]}" | tee "$p_log"
      if [[ $(better "$(field tokens_per_s "$p_log")" "$best_p") == 1 ]]; then
        best_p=$(field tokens_per_s "$p_log"); best_p_log=$p_log; best_p_name=$name
      fi
    done
  done
  flops=$(field flops_per_token "$best_s_log")
  summary+=("$(awk -v m="$model B=$batch" -v s="$best_s" -v sb="$(field best_tokens_per_s "$best_s_log")" \
    -v sc="$(field cpu_tokens_per_s "$best_s_log")" -v p="$best_p" -v pb="$(field best_tokens_per_s "$best_p_log")" \
    -v pc="$(field cpu_tokens_per_s "$best_p_log")" -v f="$flops" -v peak="$(field peak_gflops "$best_s_log")" \
    -v pn="$best_p_name" 'BEGIN {
      printf "%-11s | %9.1f %9.1f %9.1f %7.1f %5.1f%% | %9.1f %9.1f %9.1f %7.1f | %5.2fx %5.2fx %5.2fx | %s",
        m, s, sb, sc, s * f * 1e-9, 100 * s * f * 1e-9 / peak, p, pb, pc, p * f * 1e-9, s / p, sb / pb, sc / pc, pn }')")
done

echo
echo "load after: $(uptime)"
echo "tok/s: mean over the timed steps; best: fastest step; cpu: tokens per CPU-second x threads."
echo "GFLOP/s: model FLOPs (train/flops.h) x tok/s; % of the FMA peak bench_train_step measured."
printf '%-11s | %9s %9s %9s %7s %6s | %9s %9s %9s %7s | %6s %6s %6s | %s\n' config "shardlm" best cpu GFLOP/s "%peak" \
  "PyTorch" best cpu GFLOP/s ratio best cpu "PyTorch's best BLAS"
for line in "${summary[@]}"; do echo "$line"; done
