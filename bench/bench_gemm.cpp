// GFLOP/s of the CPU backend's GEMMs (oneDNN sgemm through cpu::sgemm, with exactly the
// transposes matmul.cpp uses) on the model's own shapes, against the FMA peak measured first
// in the same process.
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

// Best (least disturbed on a shared machine) and median time of `fn`, in seconds: repeats
// until at least `min_seconds` and 10 runs have passed, after one warm-up run.
template <typename Fn>
std::pair<double, double> time_it(Fn fn, double min_seconds = 1.0) {
  fn();
  std::vector<double> times;
  const double start = omp_get_wtime();
  while (times.size() < 10 || omp_get_wtime() - start < min_seconds) {
    const double t0 = omp_get_wtime();
    fn();
    times.push_back(omp_get_wtime() - t0);
  }
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

void bench_model(const std::string& model, double peak) {
  const shardlm::ModelConfig cfg = shardlm::model_preset(model);
  const int C = cfg.n_embd;
  const int B = model == "mini" ? 8 : 4;  // the micro-batches the benchmarks train with
  const int T = 256;
  const int N = B * T;
  const int L = cfg.n_layer;
  const std::vector<Layer> layers{{"qkv", C, 3 * C, L},
                                  {"attn proj", C, C, L},
                                  {"fc", C, 4 * C, L},
                                  {"fc proj", 4 * C, C, L},
                                  {"lm head", C, cfg.padded_vocab(), 1}};
  std::printf("\nmodel %s: C=%d, padded vocab %d, N = B*T = %d*%d = %d\n", model.c_str(), C,
              cfg.padded_vocab(), B, T, N);
  std::printf("%-10s %-26s %6s %6s %6s %9s %9s %8s %7s\n", "layer", "gemm", "M", "N", "K",
              "best ms", "median ms", "GFLOP/s", "% peak");
  shardlm::KernelBackend& be = shardlm::cpu_backend();
  double total_flops = 0.0, total_seconds = 0.0;
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
         [&] { shardlm::cpu::sgemm(Transpose::No, Transpose::Yes, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC); }},
        {"bwd  dinp = dout @ W", N, IC, OC,
         [&] { shardlm::cpu::sgemm(Transpose::No, Transpose::No, N, IC, OC, 1.0f, out, OC, weight, IC, 0.0f, dinp, IC); }},
        {"bwd  dW += dout^T @ inp", OC, IC, N,
         [&] { shardlm::cpu::sgemm(Transpose::Yes, Transpose::No, OC, IC, N, 1.0f, out, OC, inp, IC, 1.0f, dweight, IC); }},
    };
    for (const Gemm& g : gemms) {
      const auto [best, median] = time_it(g.run);
      const double flops = 2.0 * g.M * g.Ncols * g.K;
      const double gflops = flops / best * 1e-9;
      total_flops += flops * layer.count;
      total_seconds += median * layer.count;
      std::printf("%-10s %-26s %6d %6d %6d %9.3f %9.3f %8.1f %6.1f%%\n", layer.name, g.what, g.M,
                  g.Ncols, g.K, best * 1e3, median * 1e3, gflops, 100.0 * gflops / peak);
    }
    for (float* p : {inp, weight, out, dinp, dweight}) be.free_memory(p);
  }
  const double overall = total_flops / total_seconds * 1e-9;
  std::printf("all GEMMs of a training step (%d layers + lm head, medians): %.1f GFLOP/s, "
              "%.1f%% of peak, %.1f ms\n",
              L, overall, 100.0 * overall / peak, total_seconds * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) models.emplace_back(argv[i]);
  if (models.empty()) models = {"mini", "gpt2"};
  // Best of many short runs, like the GEMM timings (see bench_peak_fma).
  const double peak = shardlm::cpu::measure_fma_peak_gflops(0.05, 40);
  std::printf("threads %d, measured fp32 FMA peak %.1f GFLOP/s\n", omp_get_max_threads(), peak);
  for (const auto& m : models) bench_model(m, peak);
  return 0;
}
