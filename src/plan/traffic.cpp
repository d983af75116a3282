#include "plan/traffic.h"

#include <algorithm>

#include "parallel/data_parallel.h"
#include "parallel/pipeline.h"
#include "plan/stage_params.h"

namespace shardlm {

uint64_t ring_bytes(uint64_t bytes, int p) {
  return p <= 1 ? 0 : bytes * static_cast<uint64_t>(p - 1) / static_cast<uint64_t>(p);
}

CommBytes step_bytes(const ModelConfig& m, const Layout& layout, int seq_len, int pp_rank) {
  const int t = layout.tp, d = layout.dp, p = layout.pp;
  const auto ranges = pipeline_stage_ranges(m.n_layer, p, layout.pp_layers);
  const auto stage = ranges[static_cast<size_t>(pp_rank)];
  const int layers = stage.second - stage.first;
  const bool first = pp_rank == 0, last = pp_rank == p - 1;
  const uint64_t M = static_cast<uint64_t>(layout.micro_batches);
  const uint64_t N = static_cast<uint64_t>(layout.micro_batch) * static_cast<uint64_t>(seq_len);
  const uint64_t NC = N * static_cast<uint64_t>(m.n_embd);
  CommBytes b;
  // TP, per micro-batch: 2 all-reduces of [N,C] per block forward and 2 backward, the
  // embedding's in forward (first stage), d(final norm out) in backward and the cross-entropy's
  // row max [N] and sums [2N] in forward (last stage). fp32 all-reduce of n: ring(2*4n).
  const uint64_t nc_reduces = 4 * static_cast<uint64_t>(layers) + (first ? 1 : 0) + (last ? 1 : 0);
  b.tp = M * (nc_reduces * ring_bytes(8 * NC, t) +
              (last ? ring_bytes(8 * N, t) + ring_bytes(8 * 2 * N, t) : 0));
  // DP: the fp64 loss all-reduce, then the gradients: all-reduce of the flat buffer in 2^24
  // element buckets, or with ZeRO a reduce-scatter plus the parameter all-gather.
  const StageParams sp = stage_params(m, layout, pp_rank);
  const uint64_t F = sp.flat;
  b.dp = ring_bytes(2 * 8, d);
  if (layout.zero >= 2) {
    // Each unit's gradients are reduce-scattered after every micro-batch's backward of it, the
    // rest once (parallel/data_parallel.h); ZeRO-3 gathers each unit before every forward and
    // backward use of it and the rest after the update, ZeRO-2 the whole buffer then.
    for (const FlatRange& u : sp.units)
      b.dp += (layout.zero == 3 ? 3 : 1) * M * ring_bytes(4 * u.size(), d);
    for (const FlatRange& r : GradientSync::outside_units(F, sp.units))
      b.dp += (layout.zero == 3 ? 2 : 1) * ring_bytes(4 * r.size(), d);
    if (layout.zero == 2) b.dp += ring_bytes(4 * F, d);
  } else if (layout.zero >= 1) {
    b.dp += 2 * ring_bytes(4 * F, d);
  } else {
    const uint64_t bucket = uint64_t{1} << 24;
    for (uint64_t off = 0; off < F; off += bucket)
      b.dp += ring_bytes(8 * std::min(bucket, F - off), d);
  }
  // PP: M activations [N,C] forward (all but the last stage), M gradients back (all but the
  // first), the tied embedding gradient exchanged between first and last stage, and the last
  // stage's fp64 loss broadcast.
  if (p > 1) {
    b.pp = M * 4 * NC * ((last ? 0 : 1) + (first ? 0 : 1));
    b.pp += 4 * static_cast<uint64_t>(sp.tied_total);
    if (last) b.pp += 8;
  }
  // World: the fp64 sum of squares for the gradient norm.
  b.world = ring_bytes(2 * 8, layout.world());
  return b;
}

}  // namespace shardlm
