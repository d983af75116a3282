// The CUDA backend on one GPU: GEMM TFLOP/s of the model's linear layers (forward, and
// backward = dinp + dweight + dbias), then full optimizer steps (forward, backward, grad norm,
// AdamW) of one process on synthetic tokens: tokens/s and model TFLOP/s
// (ModelFamily::flops_per_token). Each measurement runs in fp32 (the default, CPU-parity numerics)
// and with TF32 tensor-core GEMMs, unless --math picks one.
//   usage: bench_train_step_cuda [--model PRESET] [--seq-len T] [--micro-batch B] [--steps N]
//                                [--warmup-steps W] [--math fp32|tf32|both] [--gemm-reps R]
// Defaults: the 124M `gpt2` preset, T = 1024, B = 8. The "device:", "gemm:" and "result:"
// lines are key=value for scripts (scripts/gpu-check.sh reads them).
#include <cstdio>

#ifdef SHARDLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_args.h"
#include "core/clock.h"
#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/config.h"
#include "model/family.h"
#include "parallel/mesh.h"
#include "train/trainer.h"

namespace {

using shardlm::CudaBackend;

struct Options {
  std::string model = "gpt2";
  int seq_len = 1024;
  int micro_batch = 8;
  int steps = 10;
  int warmup_steps = 3;
  std::string math = "both";
  int gemm_reps = 20;
};

// nullopt for --help; throws naming the flag on anything else it cannot read.
std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  shardlm::bench::Flags flags(
      "usage: bench_train_step_cuda [--model PRESET] [--seq-len T] [--micro-batch B] [--steps N]\n"
      "                             [--warmup-steps W] [--math fp32|tf32|both] [--gemm-reps R]");
  flags.add("model", &o.model)
      .add("seq-len", &o.seq_len)
      .add("micro-batch", &o.micro_batch)
      .add("steps", &o.steps)
      .add("warmup-steps", &o.warmup_steps)
      .add("math", &o.math)
      .add("gemm-reps", &o.gemm_reps);
  if (!flags.parse(argc, argv)) {
    std::printf("%s\n", flags.usage().c_str());
    return std::nullopt;
  }
  if (o.steps < 1) shardlm::fail("--steps must be >= 1, got " + std::to_string(o.steps));
  if (o.warmup_steps < 0)
    shardlm::fail("--warmup-steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (o.gemm_reps < 1)
    shardlm::fail("--gemm-reps must be >= 1, got " + std::to_string(o.gemm_reps));
  if (o.math != "fp32" && o.math != "tf32" && o.math != "both")
    shardlm::fail("--math must be fp32, tf32 or both, got '" + o.math + "'");
  return o;
}

void print_device() {
  int device = 0, runtime = 0, driver = 0;
  cudaGetDevice(&device);
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, device);
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf(
      "device: name=\"%s\" sm=%d.%d multiprocessors=%d memory_gib=%.1f runtime=%d driver=%d\n",
      prop.name, prop.major, prop.minor, prop.multiProcessorCount,
      prop.totalGlobalMem / 1073741824.0, runtime, driver);
}

// Device buffer of n floats filled with small pseudo-random values (GEMM speed can depend on
// the data; zeros would flatter it).
float* random_device_floats(CudaBackend& be, size_t n, uint32_t seed) {
  std::vector<float> host(n);
  uint32_t state = seed * 2654435761u + 1;
  for (float& x : host) {
    state = state * 1664525u + 1013904223u;
    x = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.1f;
  }
  float* p = be.alloc_floats(n);
  be.copy_from_host(p, host.data(), n * sizeof(float));
  return p;
}

// TFLOP/s of matmul_forward and matmul_backward for each linear layer of the model at N rows.
void gemm_table(CudaBackend& be, const shardlm::ModelConfig& cfg, int N, int reps,
                const char* math) {
  struct Layer {
    const char* name;
    int C, OC;
    bool bias;
  };
  const int E = cfg.n_embd, V = cfg.padded_vocab();
  const Layer layers[] = {{"qkv", E, 3 * E, true},
                          {"attn_proj", E, E, true},
                          {"fc", E, 4 * E, true},
                          {"fc_proj", 4 * E, E, true},
                          {"lm_head", E, V, false}};
  size_t max_c = 0, max_oc = 0, max_w = 0;
  for (const Layer& l : layers) {
    max_c = std::max<size_t>(max_c, l.C);
    max_oc = std::max<size_t>(max_oc, l.OC);
    max_w = std::max<size_t>(max_w, static_cast<size_t>(l.C) * l.OC);
  }
  const size_t rows = static_cast<size_t>(N);
  float* inp = random_device_floats(be, rows * max_c, 1);
  float* weight = random_device_floats(be, max_w, 2);
  float* bias = random_device_floats(be, max_oc, 3);
  float* out = be.alloc_floats(rows * max_oc);  // doubles as dout in the backward
  float* dinp = be.alloc_floats(rows * max_c);
  float* dweight = be.alloc_floats(max_w);
  float* dbias = be.alloc_floats(max_oc);
  for (const Layer& l : layers) {
    const float* b = l.bias ? bias : nullptr;
    auto time_it = [&](auto&& fn) {
      fn();  // warm-up (cuBLAS picks and loads its kernel)
      be.synchronize();
      const double start = shardlm::monotonic_seconds();
      for (int r = 0; r < reps; ++r) fn();
      be.synchronize();
      return (shardlm::monotonic_seconds() - start) / reps;
    };
    const double flops = 2.0 * N * l.C * l.OC;
    const double fwd = time_it([&] { be.matmul_forward(out, inp, weight, b, N, l.C, l.OC); });
    const double bwd = time_it([&] {
      be.matmul_backward(dinp, dweight, l.bias ? dbias : nullptr, out, inp, weight, N, l.C, l.OC);
    });
    std::printf(
        "gemm: math=%s layer=%s N=%d C=%d OC=%d fwd_ms=%.3f fwd_tflops=%.1f bwd_ms=%.3f "
        "bwd_tflops=%.1f\n",
        math, l.name, N, l.C, l.OC, 1e3 * fwd, flops / fwd * 1e-12, 1e3 * bwd,
        2.0 * flops / bwd * 1e-12);
  }
  for (float* p : {inp, weight, bias, out, dinp, dweight, dbias}) be.free_memory(p);
}

// Full optimizer steps through the Trainer (one process: dp = tp = pp = 1).
void train_steps(CudaBackend& be, const Options& o, const char* math) {
  shardlm::TrainSettings settings;
  settings.model = shardlm::model_preset(o.model);
  settings.micro_batch = o.micro_batch;
  settings.seq_len = o.seq_len;
  settings.optim.total_steps = o.warmup_steps + o.steps;
  const shardlm::ModelConfig& cfg = settings.model;
  std::unique_ptr<shardlm::Mesh> mesh = shardlm::Mesh::single_process();
  shardlm::Trainer trainer(settings, *mesh, be);

  // A fixed pool of random sequences (next-token targets), cycled through.
  const int T = o.seq_len, pool = 4 * o.micro_batch;
  std::vector<int32_t> stream(static_cast<size_t>(pool) * (T + 1));
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, cfg.vocab_size - 1);
  for (int32_t& t : stream) t = token(rng);
  const shardlm::BatchSource data = [&](uint64_t first, int count, int32_t* tokens,
                                        int32_t* targets) {
    for (int i = 0; i < count; ++i) {
      const int32_t* seq = stream.data() + ((first + i) % pool) * static_cast<size_t>(T + 1);
      std::copy(seq, seq + T, tokens + static_cast<size_t>(i) * T);
      std::copy(seq + 1, seq + T + 1, targets + static_cast<size_t>(i) * T);
    }
  };

  for (int s = 0; s < o.warmup_steps; ++s) trainer.train_step(s, data);
  be.synchronize();
  std::vector<double> step_seconds;
  double loss = 0.0;
  const double start = shardlm::monotonic_seconds();
  for (int s = 0; s < o.steps; ++s) {
    const double t0 = shardlm::monotonic_seconds();
    loss = trainer.train_step(o.warmup_steps + s, data).loss;
    be.synchronize();  // the AdamW kernels are still queued when train_step returns
    step_seconds.push_back(shardlm::monotonic_seconds() - t0);
  }
  const double total = shardlm::monotonic_seconds() - start;
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);

  const double tokens_per_step = static_cast<double>(trainer.samples_per_step()) * T;
  const double tokens_per_s = tokens_per_step * o.steps / total;
  const double best = *std::min_element(step_seconds.begin(), step_seconds.end());
  const double tflops =
      tokens_per_s * shardlm::model_family(cfg.family).flops_per_token(cfg, T) * 1e-12;
  std::printf(
      "result: math=%s model=%s seq_len=%d micro_batch=%d steps=%d tokens_per_s=%.0f "
      "best_tokens_per_s=%.0f "
      "step_ms=%.2f model_tflops=%.2f loss=%.4f device_memory_used_gib=%.1f\n",
      math, o.model.c_str(), T, o.micro_batch, o.steps, tokens_per_s, tokens_per_step / best,
      1e3 * total / o.steps, tflops, loss, (total_bytes - free_bytes) / 1073741824.0);
}

int run(const Options& o) {
  if (!shardlm::cuda_device_available()) {
    std::fprintf(stderr, "bench_train_step_cuda: no CUDA device\n");
    return 2;
  }
  auto& be = dynamic_cast<CudaBackend&>(shardlm::cuda_backend());
  print_device();
  const shardlm::ModelConfig cfg = shardlm::model_preset(o.model);
  std::printf(
      "config: model=%s n_layer=%d n_head=%d n_embd=%d padded_vocab=%d seq_len=%d micro_batch=%d\n",
      o.model.c_str(), cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.padded_vocab(), o.seq_len,
      o.micro_batch);
  std::vector<const char*> modes;
  if (o.math != "tf32") modes.push_back("fp32");
  if (o.math != "fp32") modes.push_back("tf32");
  for (const char* math : modes) {
    be.set_tf32(std::string(math) == "tf32");
    gemm_table(be, cfg, o.micro_batch * o.seq_len, o.gemm_reps, math);
    std::fflush(stdout);
    train_steps(be, o, math);
    std::fflush(stdout);
  }
  be.set_tf32(false);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::optional<Options> options = parse_options(argc, argv);
    return options ? run(*options) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step_cuda: %s\n", e.what());
    return 1;
  }
}

#else  // !SHARDLM_HAVE_CUDA

int main() {
  std::fprintf(
      stderr,
      "bench_train_step_cuda: built without the CUDA backend (configure with -DSHARDLM_CUDA=ON)\n");
  return 1;
}

#endif
