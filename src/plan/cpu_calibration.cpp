#include "plan/cpu_calibration.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/peak_flops.h"
#include "kernels/cpu/threads.h"
#include "model/family.h"

namespace shardlm {

namespace {

constexpr int kMaxDim = 1024;  // a GEMM this wide already runs near its asymptotic rate
constexpr int kTokens = 512;   // the rows of the probe's GEMMs: a micro-batch's tokens
constexpr int kMaxSeq = 512;   // the attention probe's sequence
constexpr int kMaxAttentionHeads = 4;
// Runs of each probe, the best kept (the first warms the caches and oneDNN's kernel cache).
constexpr int kRunsOneThread = 4;
// An all-core sample counts only when the process got this share of its cores (CPU seconds /
// wall seconds x threads): below it another process had one of them, and the sample measures
// the neighbour, not how the kernels scale. A sample runs its probe back to back for at least
// kSampleSeconds, because the kernel books the other threads' CPU time at its ticks (1-4 ms):
// over 3 ms a quiet machine reads a share of 0.5 to 1.15, over 30 ms 0.95 to 1.05. A probe
// with no quiet sample gets kBusyRetries more, each after a pause that lets a neighbour's
// burst (the last job's ranks exiting) end.
constexpr double kMinCoreShare = 0.9;
constexpr double kSampleSeconds = 0.03;
constexpr int kSamplesAllThreads = 5;
constexpr int kBusyRetries = 8;
constexpr double kBusyPauseSeconds = 0.05;

// One probed kernel: `run` does a forward + backward worth `probe_flops`, standing for
// `model_flops` per token of the model (its count of such layers included).
struct Probe {
  std::function<void()> run;
  double probe_flops = 0;
  double model_flops = 0;
  bool attention = false;
};

// Deterministic values in [-0.5, 0.5): realistic magnitudes, no denormals.
std::vector<float> filled(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = static_cast<float>(seed >> 8) / 16777216.0f - 0.5f;
  }
  return v;
}

// The buffers of one matmul [N,C] x [OC,C]^T forward and backward.
struct MatmulBuffers {
  std::vector<float> inp, weight, out, dout, dinp, dweight;
};

Probe matmul_probe(KernelBackend& be, int N, int C, int OC, double model_flops) {
  auto b = std::make_shared<MatmulBuffers>();
  const auto n = static_cast<size_t>(N), c = static_cast<size_t>(C), oc = static_cast<size_t>(OC);
  b->inp = filled(n * c, 1);
  b->weight = filled(oc * c, 2);
  b->dout = filled(n * oc, 3);
  b->out.resize(n * oc);
  b->dinp.resize(n * c);
  b->dweight.resize(oc * c);
  Probe p;
  p.run = [&be, b, N, C, OC] {
    be.matmul_forward(b->out.data(), b->inp.data(), b->weight.data(), nullptr, N, C, OC);
    be.matmul_backward(b->dinp.data(), b->dweight.data(), nullptr, b->dout.data(), b->inp.data(),
                       b->weight.data(), N, C, OC);
  };
  p.probe_flops = 6.0 * N * C * OC;
  p.model_flops = model_flops;
  return p;
}

// The model's matmuls: every weight of layer 0 that AdamW decays (the families' matrices,
// [out..., in]; norms and biases are not decayed), times n_layer, and the LM head (the last
// stage's matrix, or the first stage's tied to it), as out = inp @ weight^T.
void add_matmul_probes(std::vector<Probe>& probes, KernelBackend& be, const ModelConfig& cfg,
                       int N) {
  for (const TensorSpec& t : model_family(cfg.family).tensor_plan(cfg)) {
    if (!t.weight_decay) continue;
    const bool layer = t.placement == StagePlacement::kLayer && t.layer == 0;
    const bool head = (t.placement == StagePlacement::kLastStage) ||
                      (t.placement == StagePlacement::kFirstStage && t.tied_to_last_stage);
    if (!layer && !head) continue;
    const int64_t C = t.shape.back();
    int64_t OC = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) OC *= t.shape[d];
    const double model_flops = 6.0 * static_cast<double>(OC * C) * (layer ? cfg.n_layer : 1);
    probes.push_back(matmul_probe(be, N, static_cast<int>(std::min<int64_t>(C, kMaxDim)),
                                  static_cast<int>(std::min<int64_t>(OC, kMaxDim)), model_flops));
  }
}

struct AttentionBuffers {
  std::vector<float> qkv, out, lse, dout, dqkv;
};

// The causal attention of a few heads (grouped-query when the model groups its heads) over
// min(seq_len, 512) positions; the model's count is the part of flops_per_token that grows
// with T.
Probe attention_probe(KernelBackend& be, const ModelConfig& cfg, int seq_len) {
  const int T = std::min(seq_len, kMaxSeq), hd = cfg.head_dim();
  const int g = cfg.n_head / cfg.kv_heads();  // query heads per key/value head
  const bool grouped = g > 1;
  const int kv = std::max(1, std::min(cfg.kv_heads(), kMaxAttentionHeads / g));
  const int H = grouped ? kv * g : std::min(cfg.n_head, kMaxAttentionHeads);
  const int row = grouped ? kv * (g + 2) * hd : 3 * H * hd;  // a token's qkv
  auto b = std::make_shared<AttentionBuffers>();
  b->qkv = filled(static_cast<size_t>(T) * row, 4);
  b->dout = filled(static_cast<size_t>(T) * H * hd, 5);
  b->out.resize(static_cast<size_t>(T) * H * hd);
  b->lse.resize(static_cast<size_t>(H) * T);
  b->dqkv.resize(b->qkv.size());
  Probe p;
  p.run = [&be, b, T, H, hd, kv, g, grouped] {
    if (grouped) {
      be.attention_gqa_forward(b->out.data(), b->lse.data(), b->qkv.data(), 1, T, kv, g, hd);
      be.attention_gqa_backward(b->dqkv.data(), b->dout.data(), b->qkv.data(), b->out.data(),
                                b->lse.data(), 1, T, kv, g, hd);
    } else {
      be.attention_forward(b->out.data(), b->lse.data(), b->qkv.data(), 1, T, H, hd);
      be.attention_backward(b->dqkv.data(), b->dout.data(), b->qkv.data(), b->out.data(),
                            b->lse.data(), 1, T, H, hd);
    }
  };
  const ModelFamily& family = model_family(cfg.family);
  // Per token of a sequence of T, for all layers and heads of the model.
  const double per_token_at = family.flops_per_token(cfg, T) - family.flops_per_token(cfg, 0);
  p.probe_flops = per_token_at / cfg.n_layer * H / cfg.n_head * T;
  p.model_flops = per_token_at * seq_len / T;  // the count is linear in T
  p.attention = true;
  return p;
}

// Seconds the model's FLOPs per token take at the probes' rates (each one's best of several
// back-to-back runs, its data warm in cache as in a step), dense and attention apart, and the
// best FMA peak of a core, measured before each probe. On one thread: the calling thread's
// CPU seconds (a busy machine does not lower it); on several, wall seconds of the runs that had
// the cores to themselves. Interleaving the peak with the kernels makes a neighbour on the host
// that slows the core for a while lower both or neither.
struct ModelSeconds {
  double dense = 0, attention = 0;
  double core_peak = 0;     // FLOP/s; one thread only
  bool cores_busy = false;  // several threads: a probe never had all cores to itself
};

// The best seconds of kRunsOneThread single-thread runs of `p`, in thread CPU time.
double best_one_thread(const Probe& p) {
  double best = 0;
  for (int r = 0; r < kRunsOneThread; ++r) {
    const double cpu0 = thread_cpu_seconds();
    p.run();
    const double t = std::max(thread_cpu_seconds() - cpu0, 1e-9);
    if (r == 0 || t < best) best = t;
  }
  return best;
}

// One all-core sample of `p`: `runs` back-to-back runs.
struct Sample {
  double seconds_per_run = 0;
  double core_share = 0;  // CPU seconds / (wall seconds x threads)
};

Sample all_core_sample(const Probe& p, int threads, int runs) {
  const double wall0 = monotonic_seconds(), cpu0 = process_cpu_seconds();
  for (int r = 0; r < runs; ++r) p.run();
  const double wall = std::max(monotonic_seconds() - wall0, 1e-9);
  return {wall / runs, (process_cpu_seconds() - cpu0) / (wall * threads)};
}

// The best seconds per run of the all-core samples of `p` that had kMinCoreShare of the
// cores; 0 when none did.
double best_all_threads(const Probe& p, int threads) {
  const double warm = all_core_sample(p, threads, 1).seconds_per_run;
  const int runs = static_cast<int>(std::clamp(std::ceil(kSampleSeconds / warm), 1.0, 1e4));
  double best = 0;
  for (int s = 0; s < kSamplesAllThreads + kBusyRetries; ++s) {
    if (s >= kSamplesAllThreads) {
      if (best > 0) break;
      std::this_thread::sleep_for(std::chrono::duration<double>(kBusyPauseSeconds));
    }
    const Sample sample = all_core_sample(p, threads, runs);
    if (sample.core_share >= kMinCoreShare && (best == 0 || sample.seconds_per_run < best))
      best = sample.seconds_per_run;
  }
  return best;
}

ModelSeconds model_seconds(const std::vector<Probe>& probes, int threads) {
  cpu::set_cpu_threads(threads);
  ModelSeconds s;
  for (const Probe& p : probes) {
    double best = 0;
    if (threads == 1) {
      s.core_peak = std::max(s.core_peak, cpu::measure_fma_peak(0.01, 1).cpu_gflops * 1e9);
      best = best_one_thread(p);
    } else {
      best = best_all_threads(p, threads);
      if (best == 0) {
        s.cores_busy = true;
        break;
      }
    }
    (p.attention ? s.attention : s.dense) += best * p.model_flops / p.probe_flops;
  }
  return s;
}

}  // namespace

CpuCalibration calibrate_cpu(const ModelConfig& cfg, int seq_len, double core_peak) {
  SHARDLM_CHECK(core_peak > 0 && seq_len > 0, "calibrate_cpu needs a peak and a sequence length");
  const double start = monotonic_seconds();
  KernelBackend& be = cpu_backend();
  std::vector<Probe> probes;
  add_matmul_probes(probes, be, cfg, kTokens);
  probes.push_back(attention_probe(be, cfg, seq_len));
  double dense_flops = 0, attention_flops = 0;
  for (const Probe& p : probes) (p.attention ? attention_flops : dense_flops) += p.model_flops;

  const int before = omp_get_max_threads();
  CpuCalibration c;
  c.threads = cpu::usable_cpu_count();
  const ModelSeconds one = model_seconds(probes, 1);
  c.core_peak = std::max(core_peak, one.core_peak);
  c.dense_efficiency = dense_flops / one.dense / c.core_peak;
  c.attention_efficiency = attention_flops / one.attention / c.core_peak;
  if (c.threads > 1) {
    const ModelSeconds all = model_seconds(probes, c.threads);
    c.cores_busy = all.cores_busy;
    if (!c.cores_busy) {
      const double speedup = (one.dense + one.attention) / (all.dense + all.attention);
      c.thread_scaling = std::clamp((speedup - 1.0) / (c.threads - 1), 0.0, 1.0);
    }
  }
  cpu::set_cpu_threads(before);
  c.seconds = monotonic_seconds() - start;
  return c;
}

void apply_calibration(DeviceSpec& device, const CpuCalibration& c) {
  device.peak_flops = device.cores * c.core_peak;
  device.efficiency = c.dense_efficiency;
  device.attention_efficiency = c.attention_efficiency;
  if (c.threads > 1 && !c.cores_busy) device.thread_scaling = c.thread_scaling;
  char what[200];
  std::snprintf(what, sizeof what,
                "measured here in %.2f s: matmuls %.0f%%, attention %.0f%% of a core's peak, "
                "a thread past the first %.2f of a core%s",
                c.seconds, 100 * c.dense_efficiency, 100 * c.attention_efficiency,
                device.thread_scaling,
                c.cores_busy ? " (reference: another process kept a core busy)" : "");
  device.rates_source = what;
}

}  // namespace shardlm
