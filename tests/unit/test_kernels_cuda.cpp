// CUDA kernel backend against the CPU backend: every op, forward and backward, on the same
// random inputs (awkward shapes: channels that are not multiples of 32, several column-sum
// chunks, vocabulary shards with padded columns and shards that own no column), the
// accumulate (+=) / write (=) conventions (accumulated outputs start from random values,
// written ones from NaN), and a whole GPT-2 forward, backward and AdamW step built on each
// backend from the same seed. Tolerances are max |cuda - cpu| / max |cpu| per tensor: 1e-5
// for elementwise and row-local ops, 1e-4 where long sums are reordered (DESIGN.md).
//
// Without a device every test skips ("no CUDA device"); without SHARDLM_CUDA the file is one
// skipped test.
#include <gtest/gtest.h>

#ifdef SHARDLM_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "parallel/mpi_comm.h"

namespace {

using namespace shardlm;
using Vec = std::vector<float>;
using Ints = std::vector<int32_t>;

constexpr double kTol = 1e-5;           // elementwise and row-local ops
constexpr double kReductionTol = 1e-4;  // column sums, GEMMs over long inner dimensions
const float kNaN = std::numeric_limits<float>::quiet_NaN();

KernelBackend& cpu() {
  return cpu_backend();
}
KernelBackend& gpu() {
  return cuda_backend();
}

Vec random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Vec v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Ints random_ints(size_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
  Ints v(n);
  for (int32_t& x : v) x = dist(rng);
  return v;
}

// The same values on both backends: a host vector the CPU backend works on and a device copy
// the CUDA backend works on.
template <typename T>
class Twin {
 public:
  explicit Twin(std::vector<T> values) : host_(std::move(values)) {
    if constexpr (std::is_same_v<T, float>)
      device_ = gpu().alloc_floats(host_.size());
    else
      device_ = gpu().alloc_ints(host_.size());
    gpu().copy_from_host(device_, host_.data(), host_.size() * sizeof(T));
  }
  ~Twin() { gpu().free_memory(device_); }
  Twin(const Twin&) = delete;
  Twin& operator=(const Twin&) = delete;

  T* host() { return host_.data(); }  // for the CPU backend
  T* device() { return device_; }     // for the CUDA backend
  const std::vector<T>& host_values() const { return host_; }
  std::vector<T> device_values() const {
    std::vector<T> out(host_.size());
    gpu().copy_to_host(out.data(), device_, out.size() * sizeof(T));
    return out;
  }

 private:
  std::vector<T> host_;
  T* device_ = nullptr;
};

// max |got - want| / max |want| over the finite entries of want; non-finite entries of want
// must be matched exactly (e.g. the -inf row max of a shard with no valid column).
void expect_close(const Vec& got, const Vec& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0.0;
  for (float w : want)
    if (std::isfinite(w)) scale = std::max(scale, static_cast<double>(std::abs(w)));
  double worst = 0.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i])) {
      EXPECT_TRUE(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))
          << what << "[" << i << "] = " << got[i] << ", expected " << want[i];
      continue;
    }
    const double err = std::isfinite(got[i]) ? std::abs(static_cast<double>(got[i]) - want[i])
                                             : std::numeric_limits<double>::infinity();
    if (err > worst) {
      worst = err;
      worst_index = i;
    }
  }
  const double rel = scale > 0.0 ? worst / scale : worst;
  EXPECT_LE(rel, tol) << what << ": max error " << worst << " at [" << worst_index << "] (cuda "
                      << got[worst_index] << ", cpu " << want[worst_index] << "), max |cpu| "
                      << scale;
}

void expect_parity(const Twin<float>& t, double tol, const std::string& what) {
  expect_close(t.device_values(), t.host_values(), tol, what);
}

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaKernels, MemoryIsZeroFilledCopiedAndOverlapSafe) {
  EXPECT_STREQ(gpu().name(), "cuda");
  EXPECT_FALSE(gpu().host_memory());
  const size_t n = 1000;
  float* a = gpu().alloc_floats(n);
  int32_t* ints = gpu().alloc_ints(n);
  Vec host(n, 1.0f);
  gpu().copy_to_host(host.data(), a, n * sizeof(float));
  EXPECT_EQ(host, Vec(n, 0.0f));
  Ints host_ints(n, 1);
  gpu().copy_to_host(host_ints.data(), ints, n * sizeof(int32_t));
  EXPECT_EQ(host_ints, Ints(n, 0));

  // Overlapping copies behave as memmove, as on the CPU backend.
  Vec values = random_vec(n, 1);
  gpu().copy_from_host(a, values.data(), n * sizeof(float));
  gpu().copy(a + 10, a, 500 * sizeof(float));
  std::memmove(values.data() + 10, values.data(), 500 * sizeof(float));
  gpu().copy(a, a + 300, 600 * sizeof(float));
  std::memmove(values.data(), values.data() + 300, 600 * sizeof(float));
  gpu().copy_to_host(host.data(), a, n * sizeof(float));
  EXPECT_EQ(host, values);

  gpu().fill_zero(a + 100, 200);
  std::fill(values.begin() + 100, values.begin() + 300, 0.0f);
  gpu().copy_to_host(host.data(), a, n * sizeof(float));
  EXPECT_EQ(host, values);

  float* empty = gpu().alloc_floats(0);  // a valid, distinct pointer
  EXPECT_NE(empty, nullptr);
  EXPECT_NE(empty, a);
  for (void* p : {static_cast<void*>(a), static_cast<void*>(ints), static_cast<void*>(empty)})
    gpu().free_memory(p);
}

TEST_F(CudaKernels, TokenEmbeddingForwardBackward) {
  const int N = 300, C = 70;
  // Two TP shards of a 100-row vocabulary plus a shard no token falls in; tokens repeat.
  struct Shard {
    int vocab_start, Vl;
  };
  for (const Shard s : {Shard{0, 50}, Shard{50, 50}, Shard{1000, 16}}) {
    SCOPED_TRACE("vocab_start " + std::to_string(s.vocab_start));
    Twin<int32_t> tokens(random_ints(N, 2, 0, 100));
    Twin<float> wte(random_vec(static_cast<size_t>(s.Vl) * C, 3));
    Twin<float> out(Vec(static_cast<size_t>(N) * C, kNaN));
    cpu().token_embedding_forward(out.host(), tokens.host(), wte.host(), N, C, s.vocab_start, s.Vl);
    gpu().token_embedding_forward(out.device(), tokens.device(), wte.device(), N, C, s.vocab_start,
                                  s.Vl);
    expect_parity(out, 0.0, "token embedding out");

    Twin<float> dout(random_vec(static_cast<size_t>(N) * C, 4));
    Twin<float> dwte(random_vec(static_cast<size_t>(s.Vl) * C, 5));  // accumulated into
    cpu().token_embedding_backward(dwte.host(), dout.host(), tokens.host(), N, C, s.vocab_start,
                                   s.Vl);
    gpu().token_embedding_backward(dwte.device(), dout.device(), tokens.device(), N, C,
                                   s.vocab_start, s.Vl);
    // Same additions in the same order as the CPU backend: equal, not just close.
    expect_parity(dwte, 0.0, "dwte");
  }
}

TEST_F(CudaKernels, PositionEmbeddingForwardBackward) {
  const int B = 3, T = 17, C = 70, max_T = 20;
  Twin<float> wpe(random_vec(static_cast<size_t>(max_T) * C, 6));
  Twin<float> out(random_vec(static_cast<size_t>(B) * T * C, 7));  // accumulated into
  cpu().position_embedding_forward(out.host(), wpe.host(), B, T, C);
  gpu().position_embedding_forward(out.device(), wpe.device(), B, T, C);
  expect_parity(out, 0.0, "position embedding out");

  Twin<float> dout(random_vec(static_cast<size_t>(B) * T * C, 8));
  Twin<float> dwpe(random_vec(static_cast<size_t>(max_T) * C, 9));  // accumulated into
  cpu().position_embedding_backward(dwpe.host(), dout.host(), B, T, C);
  gpu().position_embedding_backward(dwpe.device(), dout.device(), B, T, C);
  expect_parity(dwpe, 0.0, "dwpe");
}

TEST_F(CudaKernels, LayerNormForwardBackward) {
  struct Shape {
    int N, C;
  };
  // 600 rows: three column-sum chunks; 768 channels: GPT-2's width.
  for (const Shape s : {Shape{37, 70}, Shape{600, 768}, Shape{5, 1}}) {
    SCOPED_TRACE("N " + std::to_string(s.N) + " C " + std::to_string(s.C));
    const size_t NC = static_cast<size_t>(s.N) * s.C;
    Twin<float> inp(random_vec(NC, 10, 2.0f, 4.0f));  // a large mean, as the residual stream has
    Twin<float> weight(random_vec(s.C, 11, 0.5f, 1.5f)), bias(random_vec(s.C, 12));
    Twin<float> out(Vec(NC, kNaN)), mean(Vec(s.N, kNaN)), rstd(Vec(s.N, kNaN));
    cpu().layernorm_forward(out.host(), mean.host(), rstd.host(), inp.host(), weight.host(),
                            bias.host(), s.N, s.C);
    gpu().layernorm_forward(out.device(), mean.device(), rstd.device(), inp.device(),
                            weight.device(), bias.device(), s.N, s.C);
    expect_parity(out, kTol, "layernorm out");
    expect_parity(mean, kTol, "layernorm mean");
    expect_parity(rstd, kTol, "layernorm rstd");

    Twin<float> dout(random_vec(NC, 13));
    Twin<float> dinp(random_vec(NC, 14)), dweight(random_vec(s.C, 15)),
        dbias(random_vec(s.C, 16));  // +=
    cpu().layernorm_backward(dinp.host(), dweight.host(), dbias.host(), dout.host(), inp.host(),
                             weight.host(), mean.host(), rstd.host(), s.N, s.C);
    gpu().layernorm_backward(dinp.device(), dweight.device(), dbias.device(), dout.device(),
                             inp.device(), weight.device(), mean.device(), rstd.device(), s.N, s.C);
    expect_parity(dinp, kTol, "layernorm dinp");
    expect_parity(dweight, kReductionTol, "layernorm dweight");
    expect_parity(dbias, kReductionTol, "layernorm dbias");
  }
}

TEST_F(CudaKernels, MatmulForwardBackward) {
  struct Shape {
    int N, C, OC;
    bool bias, dinp;
  };
  // An odd shape, a 3-chunk dbias (N = 600), the tied LM head (no bias), the first layer (no dinp).
  for (const Shape s : {Shape{67, 45, 93, true, true}, Shape{600, 128, 384, true, true},
                        Shape{64, 64, 384, false, true}, Shape{33, 20, 7, true, false}}) {
    SCOPED_TRACE("N " + std::to_string(s.N) + " C " + std::to_string(s.C) + " OC " +
                 std::to_string(s.OC));
    const size_t NC = static_cast<size_t>(s.N) * s.C, NOC = static_cast<size_t>(s.N) * s.OC;
    Twin<float> inp(random_vec(NC, 20)), weight(random_vec(static_cast<size_t>(s.OC) * s.C, 21));
    Twin<float> bias(random_vec(s.OC, 22));
    Twin<float> out(Vec(NOC, kNaN));
    cpu().matmul_forward(out.host(), inp.host(), weight.host(), s.bias ? bias.host() : nullptr, s.N,
                         s.C, s.OC);
    gpu().matmul_forward(out.device(), inp.device(), weight.device(),
                         s.bias ? bias.device() : nullptr, s.N, s.C, s.OC);
    expect_parity(out, kTol, "matmul out");

    Twin<float> dout(random_vec(NOC, 23));
    Twin<float> dinp(Vec(NC, kNaN));                                       // written
    Twin<float> dweight(random_vec(static_cast<size_t>(s.OC) * s.C, 24));  // +=
    Twin<float> dbias(random_vec(s.OC, 25));                               // +=
    cpu().matmul_backward(s.dinp ? dinp.host() : nullptr, dweight.host(),
                          s.bias ? dbias.host() : nullptr, dout.host(), inp.host(), weight.host(),
                          s.N, s.C, s.OC);
    gpu().matmul_backward(s.dinp ? dinp.device() : nullptr, dweight.device(),
                          s.bias ? dbias.device() : nullptr, dout.device(), inp.device(),
                          weight.device(), s.N, s.C, s.OC);
    if (s.dinp)
      expect_parity(dinp, kTol, "matmul dinp");
    else
      EXPECT_TRUE(std::isnan(dinp.device_values()[0]))
          << "dinp was written although null was passed";
    expect_parity(dweight, kReductionTol, "matmul dweight");
    expect_parity(dbias, kReductionTol, "matmul dbias");
  }
}

TEST_F(CudaKernels, AttentionForwardBackward) {
  struct Shape {
    int B, T, NH, hd;
  };
  for (const Shape s : {Shape{2, 37, 3, 24}, Shape{1, 130, 2, 64}, Shape{3, 1, 1, 8}}) {
    SCOPED_TRACE("B " + std::to_string(s.B) + " T " + std::to_string(s.T) + " NH " +
                 std::to_string(s.NH) + " hd " + std::to_string(s.hd));
    const size_t C = static_cast<size_t>(s.NH) * s.hd, N = static_cast<size_t>(s.B) * s.T;
    const size_t att_size = static_cast<size_t>(s.B) * s.NH * s.T * s.T;
    Twin<float> qkv(random_vec(N * 3 * C, 30, -2.0f, 2.0f));
    Twin<float> out(Vec(N * C, kNaN)),
        att(Vec(att_size, kNaN));  // masked entries must be written too
    cpu().attention_forward(out.host(), att.host(), qkv.host(), s.B, s.T, s.NH, s.hd);
    gpu().attention_forward(out.device(), att.device(), qkv.device(), s.B, s.T, s.NH, s.hd);
    expect_parity(att, kTol, "attention probabilities");
    expect_parity(out, kTol, "attention out");

    Twin<float> dout(random_vec(N * C, 31));
    Twin<float> dqkv(Vec(N * 3 * C, kNaN)), scratch(Vec(att_size, kNaN));
    cpu().attention_backward(dqkv.host(), scratch.host(), dout.host(), qkv.host(), att.host(), s.B,
                             s.T, s.NH, s.hd);
    gpu().attention_backward(dqkv.device(), scratch.device(), dout.device(), qkv.device(),
                             att.device(), s.B, s.T, s.NH, s.hd);
    expect_parity(dqkv, kReductionTol, "attention dqkv");  // sums over T and hd
  }
}

TEST_F(CudaKernels, KvCacheAppendAndDecode) {
  const int NH = 3, hd = 24, max_seq = 50, C = NH * hd;
  const size_t cache_size = static_cast<size_t>(NH) * max_seq * hd;
  Twin<float> k_cache(random_vec(cache_size, 40)), v_cache(random_vec(cache_size, 41));
  // A prompt of 7 positions, then single-token steps, then a chunk of 3.
  struct Step {
    int pos0, Tq;
  };
  for (const Step s : {Step{0, 7}, Step{7, 1}, Step{8, 1}, Step{9, 3}}) {
    SCOPED_TRACE("pos0 " + std::to_string(s.pos0) + " Tq " + std::to_string(s.Tq));
    Twin<float> qkv(random_vec(static_cast<size_t>(s.Tq) * 3 * C, 42 + s.pos0, -2.0f, 2.0f));
    cpu().kv_cache_append(k_cache.host(), v_cache.host(), qkv.host(), s.pos0, s.Tq, NH, hd,
                          max_seq);
    gpu().kv_cache_append(k_cache.device(), v_cache.device(), qkv.device(), s.pos0, s.Tq, NH, hd,
                          max_seq);
    expect_parity(k_cache, 0.0, "k cache");
    expect_parity(v_cache, 0.0, "v cache");
    Twin<float> out(Vec(static_cast<size_t>(s.Tq) * C, kNaN));
    cpu().attention_decode(out.host(), qkv.host(), k_cache.host(), v_cache.host(), s.pos0, s.Tq, NH,
                           hd, max_seq);
    gpu().attention_decode(out.device(), qkv.device(), k_cache.device(), v_cache.device(), s.pos0,
                           s.Tq, NH, hd, max_seq);
    expect_parity(out, kTol, "decode out");
  }
  Twin<float> qkv(random_vec(3 * C, 43));
  EXPECT_THROW(gpu().kv_cache_append(k_cache.device(), v_cache.device(), qkv.device(), max_seq, 1,
                                     NH, hd, max_seq),
               Error);
  EXPECT_THROW(gpu().attention_decode(qkv.device(), qkv.device(), k_cache.device(),
                                      v_cache.device(), max_seq, 1, NH, hd, max_seq),
               Error);
}

TEST_F(CudaKernels, GeluForwardBackward) {
  const size_t n = 10007;
  Twin<float> inp(random_vec(n, 50, -6.0f, 6.0f));
  Twin<float> out(Vec(n, kNaN));
  cpu().gelu_forward(out.host(), inp.host(), n);
  gpu().gelu_forward(out.device(), inp.device(), n);
  expect_parity(out, kTol, "gelu out");
  Twin<float> dout(random_vec(n, 51)), dinp(Vec(n, kNaN));
  cpu().gelu_backward(dinp.host(), inp.host(), dout.host(), n);
  gpu().gelu_backward(dinp.device(), inp.device(), dout.device(), n);
  expect_parity(dinp, kTol, "gelu dinp");
}

TEST_F(CudaKernels, Elementwise) {
  const size_t n = 100003;
  Twin<float> a(random_vec(n, 60)), b(random_vec(n, 61)), out(Vec(n, kNaN));
  cpu().add(out.host(), a.host(), b.host(), n);
  gpu().add(out.device(), a.device(), b.device(), n);
  expect_parity(out, 0.0, "add");
  cpu().add_inplace(a.host(), b.host(), n);
  gpu().add_inplace(a.device(), b.device(), n);
  expect_parity(a, 0.0, "add_inplace");
  cpu().scale_inplace(a.host(), -0.37f, n);
  gpu().scale_inplace(a.device(), -0.37f, n);
  expect_parity(a, 0.0, "scale_inplace");
}

TEST_F(CudaKernels, VocabParallelCrossEntropy) {
  // Vocabulary 170 padded to 256 in two TP shards of 128 (the second has 42 valid columns),
  // and a shard past the vocabulary with no valid column at all.
  const int N = 29, vocab_size = 170;
  struct Shard {
    int vocab_start, Vl;
  };
  for (const Shard s : {Shard{0, 128}, Shard{128, 128}, Shard{192, 64}}) {
    SCOPED_TRACE("vocab_start " + std::to_string(s.vocab_start));
    const size_t NV = static_cast<size_t>(N) * s.Vl;
    Vec values = random_vec(NV, 70, -8.0f, 8.0f);
    // Padded columns hold huge values: they must not take part.
    for (int n = 0; n < N; ++n)
      for (int j = std::max(0, vocab_size - s.vocab_start); j < s.Vl; ++j)
        values[static_cast<size_t>(n) * s.Vl + j] = 1e4f;
    Twin<float> logits(values);
    Twin<int32_t> targets(random_ints(N, 71, 0, vocab_size));
    Twin<float> row_max(Vec(N, kNaN)), sum_exp(Vec(N, kNaN)), target_logit(Vec(N, kNaN)),
        losses(Vec(N, kNaN));
    cpu().xent_row_max(row_max.host(), logits.host(), N, s.Vl, s.vocab_start, vocab_size);
    gpu().xent_row_max(row_max.device(), logits.device(), N, s.Vl, s.vocab_start, vocab_size);
    expect_parity(row_max, 0.0, "row_max");
    cpu().xent_partial_sums(sum_exp.host(), target_logit.host(), logits.host(), row_max.host(),
                            targets.host(), N, s.Vl, s.vocab_start, vocab_size);
    gpu().xent_partial_sums(sum_exp.device(), target_logit.device(), logits.device(),
                            row_max.device(), targets.device(), N, s.Vl, s.vocab_start, vocab_size);
    expect_parity(sum_exp, kTol, "sum_exp");
    expect_parity(target_logit, 0.0, "target_logit");
    if (s.vocab_start >= vocab_size) continue;  // nothing to normalise on a shard with no column
    cpu().xent_loss(losses.host(), row_max.host(), sum_exp.host(), target_logit.host(), N);
    gpu().xent_loss(losses.device(), row_max.device(), sum_exp.device(), target_logit.device(), N);
    expect_parity(losses, kTol, "losses");

    // Out of place into NaN, and in place over the logits as the model does.
    const float dloss = 1.0f / 29.0f;
    Twin<float> dlogits(Vec(NV, kNaN));
    cpu().xent_backward(dlogits.host(), logits.host(), row_max.host(), sum_exp.host(),
                        targets.host(), dloss, N, s.Vl, s.vocab_start, vocab_size);
    gpu().xent_backward(dlogits.device(), logits.device(), row_max.device(), sum_exp.device(),
                        targets.device(), dloss, N, s.Vl, s.vocab_start, vocab_size);
    expect_parity(dlogits, kTol, "dlogits");
    cpu().xent_backward(logits.host(), logits.host(), row_max.host(), sum_exp.host(),
                        targets.host(), dloss, N, s.Vl, s.vocab_start, vocab_size);
    gpu().xent_backward(logits.device(), logits.device(), row_max.device(), sum_exp.device(),
                        targets.device(), dloss, N, s.Vl, s.vocab_start, vocab_size);
    expect_parity(logits, kTol, "dlogits in place");
  }
}

TEST_F(CudaKernels, SumSquaresInDoubleAndDeterministic) {
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{3000017}}) {
    SCOPED_TRACE("n " + std::to_string(n));
    Twin<float> x(random_vec(n, 80, -3.0f, 3.0f));
    const double want = cpu().sum_squares(x.host(), n);
    const double got = gpu().sum_squares(x.device(), n);
    EXPECT_NEAR(got, want, 1e-11 * want);              // both sum in double, in different orders
    EXPECT_EQ(gpu().sum_squares(x.device(), n), got);  // bit-identical on a rerun
  }
  EXPECT_EQ(gpu().sum_squares(nullptr, 0), 0.0);
}

TEST_F(CudaKernels, AdamW) {
  const size_t n = 100003;
  Twin<float> param(random_vec(n, 90)), grad(random_vec(n, 91, -0.1f, 0.1f));
  Twin<float> m(random_vec(n, 92, -0.01f, 0.01f)), v(random_vec(n, 93, 0.0f, 1e-3f));
  for (int step = 1; step <= 3; ++step) {
    cpu().adamw_update(param.host(), grad.host(), m.host(), v.host(), n, 6e-4f, 0.9f, 0.95f, 1e-8f,
                       0.1f, 0.7f, step);
    gpu().adamw_update(param.device(), grad.device(), m.device(), v.device(), n, 6e-4f, 0.9f, 0.95f,
                       1e-8f, 0.1f, 0.7f, step);
  }
  expect_parity(param, kTol, "param");
  expect_parity(m, kTol, "exp_avg");
  expect_parity(v, kTol, "exp_avg_sq");
}

// ---- the whole model ---------------------------------------------------------------------------

ModelConfig small_gpt2() {
  ModelConfig cfg;
  cfg.n_layer = 2;
  cfg.n_head = 4;
  cfg.n_embd = 64;
  cfg.vocab_size = 301;  // padded to 384: 83 padded columns in the LM head
  cfg.max_seq_len = 32;
  return cfg;
}

Vec download(ModelStage& model, const float* p, size_t n) {
  Vec out(n);
  model.backend().copy_to_host(out.data(), p, n * sizeof(float));
  return out;
}

Vec tensor(ModelStage& model, const float* flat, const TensorView& view) {
  return download(model, flat + view.flat_offset, view.numel);
}

TEST_F(CudaKernels, GPT2StepMatchesCpu) {
  const ModelConfig cfg = small_gpt2();
  const int B = 3, T = 19, N = B * T;
  SelfCommunicator tp_cpu("tp"), tp_gpu("tp");
  auto on_cpu_stage = make_model_stage(cfg, ShardSpec::whole_model(cfg), cpu(), tp_cpu, B, T);
  ModelStage& on_cpu = *on_cpu_stage;
  auto on_gpu_stage = make_model_stage(cfg, ShardSpec::whole_model(cfg), gpu(), tp_gpu, B, T);
  ModelStage& on_gpu = *on_gpu_stage;
  on_cpu.init_weights(1234);
  on_gpu.init_weights(1234);
  const Ints tokens = random_ints(N, 100, 0, cfg.vocab_size),
             targets = random_ints(N, 101, 0, cfg.vocab_size);

  on_cpu.zero_grads();
  on_gpu.zero_grads();
  const float loss_cpu = on_cpu.forward(0, tokens.data(), targets.data(), nullptr);
  const float loss_gpu = on_gpu.forward(0, tokens.data(), targets.data(), nullptr);
  EXPECT_NEAR(loss_gpu, loss_cpu, kTol * loss_cpu);
  const size_t n_logits = static_cast<size_t>(N) * cfg.padded_vocab();
  expect_close(download(on_gpu, on_gpu.logits(0), n_logits),
               download(on_cpu, on_cpu.logits(0), n_logits), kTol, "logits");

  on_cpu.backward(0, 1.0f, nullptr);
  on_gpu.backward(0, 1.0f, nullptr);
  const size_t total = on_cpu.layout().total();
  const Vec grads_gpu = download(on_gpu, on_gpu.grads(), total);
  for (const TensorView& v : on_cpu.layout().views())
    expect_close(tensor(on_gpu, on_gpu.grads(), v), tensor(on_cpu, on_cpu.grads(), v),
                 kReductionTol, "grad " + v.name);

  // The same step again on the GPU gives the same bits: no atomics in any reduction.
  on_gpu.zero_grads();
  EXPECT_EQ(on_gpu.forward(0, tokens.data(), targets.data(), nullptr), loss_gpu);
  on_gpu.backward(0, 1.0f, nullptr);
  EXPECT_TRUE(download(on_gpu, on_gpu.grads(), total) == grads_gpu)
      << "GPU gradients differ between two runs";

  // One AdamW step with clipping. Where a gradient is within rounding of 0 its sign, and so
  // its first AdamW step (about lr * sign(g)), may differ between the backends: allow a few
  // such elements, bounded by the step size.
  OptimizerConfig optim;
  optim.grad_clip = 0.5f;
  AdamW adam_cpu(optim, on_cpu.layout(), cpu(), 0, total),
      adam_gpu(optim, on_gpu.layout(), gpu(), 0, total);
  const double norm_cpu = std::sqrt(cpu().sum_squares(on_cpu.grads(), total));
  const double norm_gpu = std::sqrt(gpu().sum_squares(on_gpu.grads(), total));
  EXPECT_NEAR(norm_gpu, norm_cpu, kReductionTol * norm_cpu);
  adam_cpu.update(on_cpu.params(), on_cpu.grads(), 0, clip_scale(optim, norm_cpu));
  adam_gpu.update(on_gpu.params(), on_gpu.grads(), 0, clip_scale(optim, norm_gpu));
  const Vec params_cpu = download(on_cpu, on_cpu.params(), total),
            params_gpu = download(on_gpu, on_gpu.params(), total);
  size_t differing = 0;
  double worst = 0.0;
  for (size_t i = 0; i < total; ++i) {
    const double diff = std::abs(static_cast<double>(params_gpu[i]) - params_cpu[i]);
    worst = std::max(worst, diff);
    if (diff > 1e-6 + kTol * std::abs(params_cpu[i])) ++differing;
  }
  EXPECT_LE(differing, total / 1000) << "parameters that differ after one AdamW step";
  EXPECT_LE(worst, 2.5 * optim.lr);

  // And the next forward's loss agrees.
  const float next_cpu = on_cpu.forward(0, tokens.data(), targets.data(), nullptr);
  const float next_gpu = on_gpu.forward(0, tokens.data(), targets.data(), nullptr);
  EXPECT_LT(next_cpu, loss_cpu);  // the step went downhill
  EXPECT_NEAR(next_gpu, next_cpu, kReductionTol * next_cpu);
}

}  // namespace

#else  // !SHARDLM_HAVE_CUDA

TEST(CudaKernels, NotBuilt) {
  GTEST_SKIP() << "built without the CUDA backend (SHARDLM_CUDA=OFF or no nvcc)";
}

#endif
