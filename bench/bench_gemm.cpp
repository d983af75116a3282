// GFLOP/s of the CPU backend's GEMMs (oneDNN sgemm through cpu::sgemm, with exactly the
// transposes matmul.cpp uses) on the model's own shapes, against the FMA peak measured in the
// same process (bench_peak_fma's loop), both by wall clock and by CPU time.
//   usage: bench_gemm [model ...]   (default: mini gpt2)
// Forward: out[N,OC] = inp[N,C] @ W[OC,C]^T; backward: dinp[N,C] = dout[N,OC] @ W and
// dW[OC,C] += dout^T @ inp (beta = 1). N = B*T tokens per micro-batch.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "kernels/backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/peak_flops.h"
#include "model/config.h"

namespace {

using shardlm::cpu::Transpose;

struct Layer {
  const char* name;
  int in, out;  // C -> OC
  int count;    // how many times one training step runs it
};

struct Timing {
  double best_s, median_s;  // wall clock
  double best_cpu_s;        // process CPU time
};

// Times `fn` after one warm-up run, repeating until at least `min_seconds` and 10 runs have
// passed. The best wall time is the least disturbed run on a shared machine. With one thread
// the CPU time is exact per-core work even on a busy machine (it does not count time spent
// descheduled); with more threads it is not (spinning at barriers, descheduled partners), so
// the table shows it only for single-threaded runs.
template <typename Fn>
Timing time_it(Fn fn, double min_seconds = 1.0) {
  fn();
  std::vector<double> times;
  double best_cpu = 1e30;
  const double start = omp_get_wtime();
  while (times.size() < 10 || omp_get_wtime() - start < min_seconds) {
    const double t0 = omp_get_wtime(), c0 = shardlm::process_cpu_seconds();
    fn();
    times.push_back(omp_get_wtime() - t0);
    best_cpu = std::min(best_cpu, shardlm::process_cpu_seconds() - c0);
  }
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2], best_cpu};
}

struct Result {
  std::string layer, gemm;
  int M, N, K, count;
  Timing timing;
};

// The micro-batch shapes the benchmarks train with.
struct ModelShapes {
  shardlm::ModelConfig cfg;
  int B, T, N;
  explicit ModelShapes(const std::string& model)
      : cfg(shardlm::model_preset(model)), B(model == "mini" ? 8 : 4), T(256), N(B * T) {}
};

std::vector<Result> bench_model(const std::string& model) {
  const ModelShapes shapes(model);
  const int C = shapes.cfg.n_embd, N = shapes.N, L = shapes.cfg.n_layer;
  const std::vector<Layer> layers{{"qkv", C, 3 * C, L},
                                  {"attn proj", C, C, L},
                                  {"fc", C, 4 * C, L},
                                  {"fc proj", 4 * C, C, L},
                                  {"lm head", C, shapes.cfg.padded_vocab(), 1}};
  shardlm::KernelBackend& be = shardlm::cpu_backend();
  std::vector<Result> results;
  for (const Layer& layer : layers) {
    const int OC = layer.out, IC = layer.in;
    float* inp = be.alloc_floats(static_cast<size_t>(N) * IC);
    float* weight = be.alloc_floats(static_cast<size_t>(OC) * IC);
    float* out = be.alloc_floats(static_cast<size_t>(N) * OC);
    float* dinp = be.alloc_floats(static_cast<size_t>(N) * IC);
    float* dweight = be.alloc_floats(static_cast<size_t>(OC) * IC);
    for (size_t i = 0; i < static_cast<size_t>(N) * IC; ++i) inp[i] = 0.001f * (i % 997);
    for (size_t i = 0; i < static_cast<size_t>(OC) * IC; ++i) weight[i] = 0.002f * (i % 991);
    for (size_t i = 0; i < static_cast<size_t>(N) * OC; ++i) out[i] = 0.003f * (i % 983);
    struct Gemm {
      const char* what;
      int M, Ncols, K;
      std::function<void()> run;
    };
    const std::vector<Gemm> gemms{
        {"fwd  out = inp @ W^T", N, OC, IC,
         [&] {
           shardlm::cpu::sgemm(Transpose::No, Transpose::Yes, N, OC, IC, 1.0f, inp, IC, weight, IC,
                               0.0f, out, OC);
         }},
        {"bwd  dinp = dout @ W", N, IC, OC,
         [&] {
           shardlm::cpu::sgemm(Transpose::No, Transpose::No, N, IC, OC, 1.0f, out, OC, weight, IC,
                               0.0f, dinp, IC);
         }},
        {"bwd  dW += dout^T @ inp", OC, IC, N,
         [&] {
           shardlm::cpu::sgemm(Transpose::Yes, Transpose::No, OC, IC, N, 1.0f, out, OC, inp, IC,
                               1.0f, dweight, IC);
         }},
    };
    for (const Gemm& g : gemms) {
      results.push_back({layer.name, g.what, g.M, g.Ncols, g.K, layer.count, time_it(g.run)});
    }
    for (float* p : {inp, weight, out, dinp, dweight}) be.free_memory(p);
  }
  return results;
}

// "% peak" compares wall-clock with wall-clock and CPU time with CPU time.
void print_model(const std::string& model, const std::vector<Result>& results,
                 const shardlm::cpu::FmaPeak& peak) {
  const ModelShapes shapes(model);
  std::printf("\nmodel %s: C=%d, padded vocab %d, N = B*T = %d*%d = %d\n", model.c_str(),
              shapes.cfg.n_embd, shapes.cfg.padded_vocab(), shapes.B, shapes.T, shapes.N);
  const bool single_thread = omp_get_max_threads() == 1;
  std::printf("%-10s %-26s %6s %6s %6s %9s %9s %8s %7s", "layer", "gemm", "M", "N", "K", "best ms",
              "median ms", "GFLOP/s", "% peak");
  if (single_thread) std::printf(" %9s %7s", "cpu GF/s", "% peak");
  std::printf("\n");
  double total_flops = 0.0, total_seconds = 0.0;
  for (const Result& r : results) {
    const double flops = 2.0 * r.M * r.N * r.K;
    const double gflops = flops / r.timing.best_s * 1e-9;
    total_flops += flops * r.count;
    total_seconds += r.timing.median_s * r.count;
    std::printf("%-10s %-26s %6d %6d %6d %9.3f %9.3f %8.1f %6.1f%%", r.layer.c_str(),
                r.gemm.c_str(), r.M, r.N, r.K, r.timing.best_s * 1e3, r.timing.median_s * 1e3,
                gflops, 100.0 * gflops / peak.wall_gflops);
    if (single_thread) {
      const double cpu_gflops = flops / r.timing.best_cpu_s * 1e-9;
      std::printf(" %9.1f %6.1f%%", cpu_gflops, 100.0 * cpu_gflops / peak.cpu_gflops);
    }
    std::printf("\n");
  }
  const double overall = total_flops / total_seconds * 1e-9;
  std::printf(
      "all GEMMs of a training step (%d layers + lm head, medians): %.1f GFLOP/s, "
      "%.1f%% of peak, %.1f ms\n",
      shapes.cfg.n_layer, overall, 100.0 * overall / peak.wall_gflops, total_seconds * 1e3);
}

int run(const std::vector<std::string>& models) {
  // Best of many short runs, like the GEMM timings (see bench_peak_fma); measured again at the
  // end and the higher value kept, so that a disturbed first measurement cannot inflate the
  // percentages.
  const shardlm::cpu::FmaPeak before = shardlm::cpu::measure_fma_peak(0.05, 40);
  std::vector<std::vector<Result>> results;
  for (const auto& m : models) results.push_back(bench_model(m));
  const shardlm::cpu::FmaPeak after = shardlm::cpu::measure_fma_peak(0.05, 40);
  const shardlm::cpu::FmaPeak peak{std::max(before.wall_gflops, after.wall_gflops),
                                   std::max(before.cpu_gflops, after.cpu_gflops)};
  std::printf(
      "threads %d; fp32 FMA peak, best before/after the GEMMs: wall-clock %.1f GFLOP/s, "
      "CPU-time %.1f GFLOP/s\n",
      omp_get_max_threads(), peak.wall_gflops, peak.cpu_gflops);
  for (size_t i = 0; i < models.size(); ++i) print_model(models[i], results[i], peak);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) models.emplace_back(argv[i]);
  if (models.size() == 1 && (models[0] == "--help" || models[0] == "-h")) {
    std::puts("usage: bench_gemm [PRESET...]   (the GEMMs of a training step; default mini gpt2)");
    return 0;
  }
  if (models.empty()) models = {"mini", "gpt2"};
  try {
    return run(models);
  } catch (const std::exception& e) {  // an unknown preset, for instance
    std::fprintf(stderr, "bench_gemm: %s\n", e.what());
    return 2;
  }
}
