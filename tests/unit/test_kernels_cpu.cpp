// CPU kernel backend: every forward against a straightforward double-precision reference,
// every backward against central finite differences of that reference, plus the
// accumulate (+=) / write (=) conventions of kernels/backend.h. Shapes are small and awkward
// (B=2, T=5, C=12, NH=3, OC=7, vocab 13) with a second, larger shape per op so the vector
// bodies, OpenMP splits and causal tiles of the kernels are exercised too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace {

using shardlm::KernelBackend;
using Vec = std::vector<float>;
using DVec = std::vector<double>;
using LossFn = std::function<double(const DVec&)>;

KernelBackend& backend() {
  return shardlm::cpu_backend();
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

Vec random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Vec v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

DVec to_double(const Vec& v) {
  return DVec(v.begin(), v.end());
}

// sum_i a[i] * w[i]: the scalar loss whose gradient w.r.t. an output is `w` (used as dout).
double dot(const DVec& a, const Vec& w) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * w[i];
  return s;
}

// Checks that `actual` matches `expected` elementwise within rtol*|e| + atol.
void expect_close(const Vec& actual, const DVec& expected, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double err = std::abs(actual[i] - expected[i]);
    if (!(err <= rtol * std::abs(expected[i]) + atol) && reported++ < 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << actual[i] << ", expected " << expected[i];
    }
  }
}

// Central finite differences of a double-precision loss at `at`, compared with the kernel's
// gradient `grad`, on every coordinate or on `max_coords` sampled ones. The tolerance is
// relative to each entry and to the largest gradient (fp32 kernels vs exact derivatives).
void expect_gradient(const std::string& what, const LossFn& loss, const Vec& at, const Vec& grad,
                     size_t max_coords = 0, double rtol = 1e-4) {
  ASSERT_EQ(at.size(), grad.size()) << what;
  std::vector<size_t> coords(at.size());
  for (size_t i = 0; i < coords.size(); ++i) coords[i] = i;
  if (max_coords != 0 && coords.size() > max_coords) {
    std::shuffle(coords.begin(), coords.end(), std::mt19937(1234));
    coords.resize(max_coords);
  }
  DVec x = to_double(at);
  DVec numeric(coords.size());
  double max_abs = 0.0;
  for (size_t k = 0; k < coords.size(); ++k) {
    const size_t i = coords[k];
    const double h = 1e-5 * std::max(1.0, std::abs(x[i]));
    const double x0 = x[i];
    x[i] = x0 + h;
    const double up = loss(x);
    x[i] = x0 - h;
    const double down = loss(x);
    x[i] = x0;
    numeric[k] = (up - down) / (2 * h);
    max_abs = std::max(max_abs, std::abs(numeric[k]));
  }
  int reported = 0;
  for (size_t k = 0; k < coords.size(); ++k) {
    const double analytic = grad[coords[k]];
    const double err = std::abs(analytic - numeric[k]);
    if (!(err <= rtol * (std::abs(numeric[k]) + max_abs) + 1e-7) && reported++ < 5) {
      ADD_FAILURE() << what << " gradient [" << coords[k] << "]: kernel " << analytic
                    << ", finite difference " << numeric[k] << " (max |grad| " << max_abs << ")";
    }
  }
}

// ---- memory -----------------------------------------------------------------------------

TEST(CpuKernels, AllocIsAlignedAndZeroed) {
  KernelBackend& be = backend();
  for (size_t n : {size_t{0}, size_t{1}, size_t{13}, size_t{100003}}) {
    float* f = be.alloc_floats(n);
    int32_t* i = be.alloc_ints(n);
    ASSERT_NE(f, nullptr);
    ASSERT_NE(i, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(i) % 64, 0u);
    for (size_t k = 0; k < n; ++k) {
      ASSERT_EQ(f[k], 0.0f);
      ASSERT_EQ(i[k], 0);
    }
    be.free_memory(f);
    be.free_memory(i);
  }
}

TEST(CpuKernels, CopiesAndFillZero) {
  KernelBackend& be = backend();
  const Vec host = random_vec(37, 1);
  float* a = be.alloc_floats(host.size());
  float* b = be.alloc_floats(host.size());
  be.copy_from_host(a, host.data(), host.size() * sizeof(float));
  be.copy(b, a, host.size() * sizeof(float));
  Vec back(host.size());
  be.copy_to_host(back.data(), b, back.size() * sizeof(float));
  EXPECT_EQ(back, host);
  be.fill_zero(b + 5, 20);
  be.copy_to_host(back.data(), b, back.size() * sizeof(float));
  for (size_t k = 0; k < back.size(); ++k) EXPECT_EQ(back[k], (k >= 5 && k < 25) ? 0.0f : host[k]);
  be.synchronize();
  be.free_memory(a);
  be.free_memory(b);
}

// ---- embeddings ---------------------------------------------------------------------------

struct TokenEmbeddingCase {
  int N, C, vocab_start, Vl;
};
std::ostream& operator<<(std::ostream& os, const TokenEmbeddingCase& c) {
  return os << "N=" << c.N << " C=" << c.C << " vocab_start=" << c.vocab_start << " Vl=" << c.Vl;
}

class TokenEmbedding : public ::testing::TestWithParam<TokenEmbeddingCase> {};

TEST_P(TokenEmbedding, ForwardAndBackward) {
  const auto [N, C, vocab_start, Vl] = GetParam();
  // Tokens below, inside (with repeats) and above this rank's range.
  std::vector<int32_t> tokens(N);
  for (int n = 0; n < N; ++n) tokens[n] = (n * 5 + 3) % (vocab_start + Vl + 3);
  tokens[0] = vocab_start;
  tokens[1] = vocab_start + Vl - 1;
  tokens[2] = vocab_start;
  const Vec wte = random_vec(static_cast<size_t>(Vl) * C, 2);
  const auto owned = [&](int n) {
    return tokens[n] >= vocab_start && tokens[n] < vocab_start + Vl;
  };
  const auto forward_ref = [&](const DVec& w) {
    DVec out(static_cast<size_t>(N) * C, 0.0);
    for (int n = 0; n < N; ++n)
      if (owned(n))
        for (int c = 0; c < C; ++c) out[n * C + c] = w[(tokens[n] - vocab_start) * C + c];
    return out;
  };

  Vec out(static_cast<size_t>(N) * C, kNaN);  // written, including the rows of other ranks
  backend().token_embedding_forward(out.data(), tokens.data(), wte.data(), N, C, vocab_start, Vl);
  expect_close(out, forward_ref(to_double(wte)), 0.0, 0.0, "token embedding out");

  const Vec dout = random_vec(out.size(), 3);
  const Vec prefill = random_vec(wte.size(), 4);
  Vec dwte = prefill;
  backend().token_embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C, vocab_start,
                                     Vl);
  Vec grad(dwte.size());
  for (size_t i = 0; i < grad.size(); ++i) grad[i] = dwte[i] - prefill[i];
  expect_gradient(
      "dwte", [&](const DVec& w) { return dot(forward_ref(w), dout); }, wte, grad);
  // Accumulates: a second call adds the same gradient again.
  backend().token_embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C, vocab_start,
                                     Vl);
  DVec twice(dwte.size());
  for (size_t i = 0; i < twice.size(); ++i) twice[i] = prefill[i] + 2.0 * grad[i];
  expect_close(dwte, twice, 1e-6, 1e-6, "dwte after two calls");
}

INSTANTIATE_TEST_SUITE_P(CpuKernels, TokenEmbedding,
                         ::testing::Values(TokenEmbeddingCase{10, 12, 0, 13},
                                           TokenEmbeddingCase{10, 12, 4, 7},
                                           TokenEmbeddingCase{64, 40, 8, 9}));

TEST(CpuKernels, PositionEmbedding) {
  const int B = 2, T = 5, C = 12, max_T = 7;  // wpe has more rows than T
  const Vec wpe = random_vec(static_cast<size_t>(max_T) * C, 5);
  const Vec base = random_vec(static_cast<size_t>(B) * T * C, 6);
  const auto forward_ref = [&](const DVec& w) {
    DVec out = to_double(base);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t)
        for (int c = 0; c < C; ++c) out[(b * T + t) * C + c] += w[t * C + c];
    return out;
  };
  Vec out = base;  // forward adds onto the token embedding
  backend().position_embedding_forward(out.data(), wpe.data(), B, T, C);
  expect_close(out, forward_ref(to_double(wpe)), 1e-7, 0.0, "position embedding out");

  const Vec dout = random_vec(out.size(), 7);
  Vec dwpe(wpe.size(), 0.0f);
  backend().position_embedding_backward(dwpe.data(), dout.data(), B, T, C);
  expect_gradient(
      "dwpe", [&](const DVec& w) { return dot(forward_ref(w), dout); }, wpe, dwpe);
  for (size_t i = static_cast<size_t>(T) * C; i < dwpe.size(); ++i) EXPECT_EQ(dwpe[i], 0.0f);
  const Vec once = dwpe;
  backend().position_embedding_backward(dwpe.data(), dout.data(), B, T, C);
  DVec twice(once.begin(), once.end());
  for (auto& x : twice) x *= 2;
  expect_close(dwpe, twice, 1e-6, 0.0, "dwpe after two calls");
}

// ---- layernorm ------------------------------------------------------------------------------

struct LayerNormRef {
  DVec out, mean, rstd;
};

LayerNormRef layernorm_ref(const DVec& x, const DVec& w, const DVec& b, int N, int C) {
  LayerNormRef r{DVec(x.size()), DVec(N), DVec(N)};
  for (int n = 0; n < N; ++n) {
    double m = 0.0, var = 0.0;
    for (int c = 0; c < C; ++c) m += x[n * C + c];
    m /= C;
    for (int c = 0; c < C; ++c) var += (x[n * C + c] - m) * (x[n * C + c] - m);
    var /= C;
    const double s = 1.0 / std::sqrt(var + 1e-5);
    for (int c = 0; c < C; ++c) r.out[n * C + c] = (x[n * C + c] - m) * s * w[c] + b[c];
    r.mean[n] = m;
    r.rstd[n] = s;
  }
  return r;
}

class LayerNorm : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(LayerNorm, ForwardAndBackward) {
  const auto [N, C] = GetParam();
  const Vec inp = random_vec(static_cast<size_t>(N) * C, 10, -1.5f, 2.5f);  // nonzero mean
  const Vec weight = random_vec(C, 11, 0.5f, 1.5f);
  const Vec bias = random_vec(C, 12);
  Vec out(inp.size(), kNaN), mean(N, kNaN), rstd(N, kNaN);
  backend().layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(),
                              bias.data(), N, C);
  const LayerNormRef ref = layernorm_ref(to_double(inp), to_double(weight), to_double(bias), N, C);
  expect_close(out, ref.out, 1e-5, 1e-6, "layernorm out");
  expect_close(mean, ref.mean, 1e-5, 1e-7, "layernorm mean");
  expect_close(rstd, ref.rstd, 1e-5, 0.0, "layernorm rstd");

  const Vec dout = random_vec(out.size(), 13);
  // dinp is the residual stream (+=); dweight and dbias accumulate too.
  const Vec dinp0 = random_vec(inp.size(), 14), dweight0 = random_vec(C, 15),
            dbias0 = random_vec(C, 16);
  Vec dinp = dinp0, dweight = dweight0, dbias = dbias0;
  backend().layernorm_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                               weight.data(), mean.data(), rstd.data(), N, C);
  const auto minus = [](const Vec& a, const Vec& b) {
    Vec d(a.size());
    for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
    return d;
  };
  const size_t samples = 200;
  const DVec w_d = to_double(weight), b_d = to_double(bias), x_d = to_double(inp);
  expect_gradient(
      "layernorm dinp",
      [&](const DVec& x) { return dot(layernorm_ref(x, w_d, b_d, N, C).out, dout); }, inp,
      minus(dinp, dinp0), samples);
  expect_gradient(
      "layernorm dweight",
      [&](const DVec& w) { return dot(layernorm_ref(x_d, w, b_d, N, C).out, dout); }, weight,
      minus(dweight, dweight0), samples);
  expect_gradient(
      "layernorm dbias",
      [&](const DVec& b) { return dot(layernorm_ref(x_d, w_d, b, N, C).out, dout); }, bias,
      minus(dbias, dbias0), samples);

  const Vec g_inp = minus(dinp, dinp0), g_w = minus(dweight, dweight0), g_b = minus(dbias, dbias0);
  backend().layernorm_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                               weight.data(), mean.data(), rstd.data(), N, C);
  const auto twice = [](const Vec& start, const Vec& g) {
    DVec r(start.size());
    for (size_t i = 0; i < r.size(); ++i) r[i] = start[i] + 2.0 * g[i];
    return r;
  };
  expect_close(dinp, twice(dinp0, g_inp), 1e-5, 1e-6, "layernorm dinp after two calls");
  expect_close(dweight, twice(dweight0, g_w), 1e-5, 1e-6, "layernorm dweight after two calls");
  expect_close(dbias, twice(dbias0, g_b), 1e-5, 1e-6, "layernorm dbias after two calls");
}

INSTANTIATE_TEST_SUITE_P(CpuKernels, LayerNorm,
                         ::testing::Values(std::pair{10, 12}, std::pair{37, 67},
                                           std::pair{65, 384}));

// ---- matmul -----------------------------------------------------------------------------------

DVec matmul_ref(const DVec& inp, const DVec& weight, const DVec* bias, int N, int C, int OC) {
  DVec out(static_cast<size_t>(N) * OC);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o) {
      double s = bias ? (*bias)[o] : 0.0;
      for (int c = 0; c < C; ++c) s += inp[n * C + c] * weight[o * C + c];
      out[n * OC + o] = s;
    }
  return out;
}

struct MatmulCase {
  int N, C, OC;
};
std::ostream& operator<<(std::ostream& os, const MatmulCase& c) {
  return os << "N=" << c.N << " C=" << c.C << " OC=" << c.OC;
}

class Matmul : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(Matmul, ForwardAndBackward) {
  const auto [N, C, OC] = GetParam();
  const Vec inp = random_vec(static_cast<size_t>(N) * C, 20);
  const Vec weight = random_vec(static_cast<size_t>(OC) * C, 21);
  const Vec bias = random_vec(OC, 22);
  const DVec inp_d = to_double(inp), weight_d = to_double(weight), bias_d = to_double(bias);

  Vec out(static_cast<size_t>(N) * OC, kNaN);
  backend().matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
  expect_close(out, matmul_ref(inp_d, weight_d, &bias_d, N, C, OC), 1e-5, 1e-6, "matmul out");
  std::fill(out.begin(), out.end(), kNaN);
  backend().matmul_forward(out.data(), inp.data(), weight.data(), nullptr, N, C, OC);
  expect_close(out, matmul_ref(inp_d, weight_d, nullptr, N, C, OC), 1e-5, 1e-6,
               "matmul out (no bias)");

  const Vec dout = random_vec(out.size(), 23);
  Vec dinp(inp.size(), kNaN);  // written
  Vec dweight(weight.size(), 0.0f), dbias(OC, 0.0f);
  backend().matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                            weight.data(), N, C, OC);
  const size_t samples = 150;
  expect_gradient(
      "matmul dinp",
      [&](const DVec& x) { return dot(matmul_ref(x, weight_d, &bias_d, N, C, OC), dout); }, inp,
      dinp, samples);
  expect_gradient(
      "matmul dweight",
      [&](const DVec& w) { return dot(matmul_ref(inp_d, w, &bias_d, N, C, OC), dout); }, weight,
      dweight, samples);
  expect_gradient(
      "matmul dbias",
      [&](const DVec& b) { return dot(matmul_ref(inp_d, weight_d, &b, N, C, OC), dout); }, bias,
      dbias, samples);

  // Second call with dinp/dbias null: dinp and dbias untouched, dweight doubles.
  const Vec dinp1 = dinp, dbias1 = dbias, dweight1 = dweight;
  backend().matmul_backward(nullptr, dweight.data(), nullptr, dout.data(), inp.data(),
                            weight.data(), N, C, OC);
  DVec dweight2(dweight1.begin(), dweight1.end());
  for (auto& x : dweight2) x *= 2;
  expect_close(dweight, dweight2, 1e-6, 1e-7, "matmul dweight after two calls");
  EXPECT_EQ(dbias, dbias1);
  // A third call with dbias: it accumulates too; dinp is rewritten, not accumulated.
  backend().matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                            weight.data(), N, C, OC);
  DVec dbias2(dbias1.begin(), dbias1.end());
  for (auto& x : dbias2) x *= 2;
  expect_close(dbias, dbias2, 1e-6, 1e-7, "matmul dbias after two calls");
  expect_close(dinp, to_double(dinp1), 1e-6, 1e-7, "matmul dinp is written, not accumulated");
}

INSTANTIATE_TEST_SUITE_P(CpuKernels, Matmul,
                         ::testing::Values(MatmulCase{10, 12, 7}, MatmulCase{33, 70, 45},
                                           MatmulCase{130, 64, 200}));

// ---- attention -----------------------------------------------------------------------------

// qkv [B,T,3,NH,hd] -> out [B,T,NH,hd], att [B,NH,T,T] (causal softmax, zeros above diagonal).
void attention_ref(const DVec& qkv, int B, int T, int NH, int hd, DVec* out, DVec* att) {
  const int C = NH * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  out->assign(static_cast<size_t>(B) * T * C, 0.0);
  if (att) att->assign(static_cast<size_t>(B) * NH * T * T, 0.0);
  std::vector<double> p(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const double* q = &qkv[(static_cast<size_t>(b) * T + t) * 3 * C + h * hd];
        double m = -1e300;
        for (int t2 = 0; t2 <= t; ++t2) {
          const double* k = &qkv[(static_cast<size_t>(b) * T + t2) * 3 * C + C + h * hd];
          double s = 0.0;
          for (int d = 0; d < hd; ++d) s += q[d] * k[d];
          p[t2] = s * scale;
          m = std::max(m, p[t2]);
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; ++t2) sum += (p[t2] = std::exp(p[t2] - m));
        for (int t2 = 0; t2 <= t; ++t2) {
          p[t2] /= sum;
          if (att) (*att)[((static_cast<size_t>(b) * NH + h) * T + t) * T + t2] = p[t2];
          const double* v = &qkv[(static_cast<size_t>(b) * T + t2) * 3 * C + 2 * C + h * hd];
          for (int d = 0; d < hd; ++d)
            (*out)[(static_cast<size_t>(b) * T + t) * C + h * hd + d] += p[t2] * v[d];
        }
      }
}

struct AttentionCase {
  int B, T, NH, hd;
};
std::ostream& operator<<(std::ostream& os, const AttentionCase& c) {
  return os << "B=" << c.B << " T=" << c.T << " NH=" << c.NH << " hd=" << c.hd;
}

class Attention : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(Attention, ForwardAndBackward) {
  const auto [B, T, NH, hd] = GetParam();
  const int C = NH * hd;
  const Vec qkv = random_vec(static_cast<size_t>(B) * T * 3 * C, 30, -1.5f, 1.5f);
  Vec out(static_cast<size_t>(B) * T * C, kNaN), att(static_cast<size_t>(B) * NH * T * T, kNaN);
  backend().attention_forward(out.data(), att.data(), qkv.data(), B, T, NH, hd);
  DVec out_ref, att_ref;
  attention_ref(to_double(qkv), B, T, NH, hd, &out_ref, &att_ref);
  expect_close(out, out_ref, 1e-5, 1e-6, "attention out");
  expect_close(att, att_ref, 1e-5, 1e-7, "attention probabilities");
  for (size_t row = 0; row < static_cast<size_t>(B) * NH * T; ++row)
    for (int t2 = static_cast<int>(row % T) + 1; t2 < T; ++t2) ASSERT_EQ(att[row * T + t2], 0.0f);

  const Vec dout = random_vec(out.size(), 31);
  Vec dqkv(qkv.size(), kNaN), scratch(att.size(), kNaN);  // written; scratch is garbage on entry
  backend().attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B,
                               T, NH, hd);
  expect_gradient(
      "attention dqkv",
      [&](const DVec& x) {
        DVec o;
        attention_ref(x, B, T, NH, hd, &o, nullptr);
        return dot(o, dout);
      },
      qkv, dqkv, 120);
  // Written, not accumulated: a second call gives the same result.
  const Vec first = dqkv;
  backend().attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), B,
                               T, NH, hd);
  EXPECT_EQ(dqkv, first);
}

INSTANTIATE_TEST_SUITE_P(CpuKernels, Attention,
                         ::testing::Values(AttentionCase{2, 5, 3, 4}, AttentionCase{1, 130, 2, 16},
                                           AttentionCase{2, 64, 2, 64}, AttentionCase{1, 37, 2, 20},
                                           AttentionCase{1, 33, 1, 80}));

// ---- GELU -----------------------------------------------------------------------------------

double gelu_ref(double x) {
  const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}

TEST(CpuKernels, Gelu) {
  Vec inp = random_vec(1003, 40, -6.0f, 6.0f);
  for (float x : {0.0f, -0.0f, 1e-6f, -1e-6f, 20.0f, -20.0f, 90.0f, -90.0f}) inp.push_back(x);
  const auto forward_ref = [](const DVec& x) {
    DVec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = gelu_ref(x[i]);
    return y;
  };
  Vec out(inp.size(), kNaN);
  backend().gelu_forward(out.data(), inp.data(), inp.size());
  // fp32 rounding of the tanh argument alone costs ~1e-6 relative where gelu(x) is tiny.
  expect_close(out, forward_ref(to_double(inp)), 1e-5, 1e-9, "gelu out");

  const Vec dout = random_vec(inp.size(), 41);
  Vec dinp(inp.size(), kNaN);  // written
  backend().gelu_backward(dinp.data(), inp.data(), dout.data(), inp.size());
  expect_gradient(
      "gelu dinp", [&](const DVec& x) { return dot(forward_ref(x), dout); }, inp, dinp, 0, 1e-5);
}

TEST(CpuKernels, GeluLargeParallel) {
  const Vec inp = random_vec(100003, 42, -8.0f, 8.0f);
  Vec out(inp.size()), dinp(inp.size());
  const Vec dout = random_vec(inp.size(), 43);
  backend().gelu_forward(out.data(), inp.data(), inp.size());
  backend().gelu_backward(dinp.data(), inp.data(), dout.data(), inp.size());
  for (size_t i = 0; i < inp.size(); ++i) {
    const double x = inp[i];
    ASSERT_NEAR(out[i], gelu_ref(x), 1e-5 * std::abs(gelu_ref(x)) + 1e-9) << "x = " << x;
    const double h = 1e-6;
    const double d = (gelu_ref(x + h) - gelu_ref(x - h)) / (2 * h) * dout[i];
    ASSERT_NEAR(dinp[i], d, 1e-5 * (std::abs(d) + 1.0)) << "x = " << x;
  }
}

// ---- elementwise ------------------------------------------------------------------------------

TEST(CpuKernels, Elementwise) {
  for (size_t n : {size_t{13}, size_t{100003}}) {
    const Vec a = random_vec(n, 50), b = random_vec(n, 51);
    Vec out(n, kNaN);
    backend().add(out.data(), a.data(), b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]);
    Vec acc = a;
    backend().add_inplace(acc.data(), b.data(), n);
    EXPECT_EQ(acc, out);
    backend().scale_inplace(acc.data(), -0.75f, n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], out[i] * -0.75f);
  }
}

// ---- cross-entropy ----------------------------------------------------------------------------

// losses[n] = logsumexp(logits[n, 0..V)) - logits[n, targets[n]], logits with row stride ld.
DVec xent_ref(const DVec& logits, const std::vector<int32_t>& targets, int N, int ld, int V) {
  DVec losses(N);
  for (int n = 0; n < N; ++n) {
    double m = -1e300, sum = 0.0;
    for (int j = 0; j < V; ++j) m = std::max(m, logits[n * ld + j]);
    for (int j = 0; j < V; ++j) sum += std::exp(logits[n * ld + j] - m);
    losses[n] = std::log(sum) + m - logits[n * ld + targets[n]];
  }
  return losses;
}

// One TP rank's view of the four cross-entropy steps.
struct XentRank {
  int vocab_start, Vl;
  Vec logits;  // [N, Vl]
  Vec row_max, sum_exp, target_logit;
};

// Runs steps 1-2 on every rank, combining row_max (MAX) and the sums (SUM) between them as the
// TP all-reduces do, then step 3; returns the losses.
Vec xent_forward_tp(std::vector<XentRank>& ranks, const std::vector<int32_t>& targets, int N,
                    int vocab_size) {
  Vec row_max(N, -kInf);
  for (auto& r : ranks) {
    r.row_max.assign(N, kNaN);
    backend().xent_row_max(r.row_max.data(), r.logits.data(), N, r.Vl, r.vocab_start, vocab_size);
    for (int n = 0; n < N; ++n) row_max[n] = std::max(row_max[n], r.row_max[n]);
  }
  Vec sum_exp(N, 0.0f), target_logit(N, 0.0f);
  for (auto& r : ranks) {
    r.sum_exp.assign(N, kNaN);
    r.target_logit.assign(N, kNaN);
    backend().xent_partial_sums(r.sum_exp.data(), r.target_logit.data(), r.logits.data(),
                                row_max.data(), targets.data(), N, r.Vl, r.vocab_start, vocab_size);
    for (int n = 0; n < N; ++n) {
      sum_exp[n] += r.sum_exp[n];
      target_logit[n] += r.target_logit[n];
    }
  }
  Vec losses(N, kNaN);
  backend().xent_loss(losses.data(), row_max.data(), sum_exp.data(), target_logit.data(), N);
  for (auto& r : ranks) {  // keep the combined values for the backward
    r.row_max = row_max;
    r.sum_exp = sum_exp;
    r.target_logit = target_logit;
  }
  return losses;
}

Vec xent_backward_rank(const XentRank& r, const std::vector<int32_t>& targets, float dloss, int N,
                       int vocab_size) {
  Vec dlogits(r.logits.size(), kNaN);  // written, padded columns included
  backend().xent_backward(dlogits.data(), r.logits.data(), r.row_max.data(), r.sum_exp.data(),
                          targets.data(), dloss, N, r.Vl, r.vocab_start, vocab_size);
  return dlogits;
}

struct XentCase {
  int N, vocab_size, padded_vocab;
};
std::ostream& operator<<(std::ostream& os, const XentCase& c) {
  return os << "N=" << c.N << " vocab_size=" << c.vocab_size << " padded=" << c.padded_vocab;
}

class CrossEntropy : public ::testing::TestWithParam<XentCase> {};

TEST_P(CrossEntropy, SingleRank) {
  const auto [N, V, Vp] = GetParam();
  Vec logits = random_vec(static_cast<size_t>(N) * Vp, 60, -4.0f, 4.0f);
  // Padded columns hold large values: they must not win the max nor get probability.
  for (int n = 0; n < N; ++n)
    for (int j = V; j < Vp; ++j) logits[n * Vp + j] = 50.0f;
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = (n * 7 + 2) % V;
  targets[0] = V - 1;

  std::vector<XentRank> ranks{{0, Vp, logits, {}, {}, {}}};
  const Vec losses = xent_forward_tp(ranks, targets, N, V);
  expect_close(losses, xent_ref(to_double(logits), targets, N, Vp, V), 1e-5, 1e-6, "xent losses");
  for (int n = 0; n < N; ++n) {
    // The loss is shift-invariant, so check the max itself: the padding must not win it.
    EXPECT_EQ(ranks[0].row_max[n],
              *std::max_element(logits.begin() + n * Vp, logits.begin() + n * Vp + V));
    EXPECT_EQ(ranks[0].target_logit[n], logits[n * Vp + targets[n]]);
  }

  const float dloss = 1.0f / N;
  const Vec dlogits = xent_backward_rank(ranks[0], targets, dloss, N, V);
  // d(dloss * sum_n loss_n)/dlogits on the real columns; exactly 0 on the padding.
  Vec grad_valid, logits_valid;
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < Vp; ++j) {
      if (j < V) {
        grad_valid.push_back(dlogits[n * Vp + j]);
        logits_valid.push_back(logits[n * Vp + j]);
      } else {
        ASSERT_EQ(dlogits[n * Vp + j], 0.0f) << "padded column " << j;
      }
    }
  std::vector<int32_t> targets_copy = targets;
  expect_gradient(
      "xent dlogits",
      [&](const DVec& x) {
        double total = 0.0;
        for (double l : xent_ref(x, targets_copy, N, V, V)) total += dloss * l;
        return total;
      },
      logits_valid, grad_valid, 300);

  // In place (dlogits == logits) gives the same bits.
  Vec in_place = logits;
  backend().xent_backward(in_place.data(), in_place.data(), ranks[0].row_max.data(),
                          ranks[0].sum_exp.data(), targets.data(), dloss, N, Vp, 0, V);
  EXPECT_EQ(in_place, dlogits);
}

INSTANTIATE_TEST_SUITE_P(CpuKernels, CrossEntropy,
                         ::testing::Values(XentCase{10, 13, 13}, XentCase{10, 13, 16},
                                           XentCase{7, 990, 1024}));

TEST(CpuKernels, CrossEntropyVocabParallelSplitMatchesUnsplit) {
  const int N = 10, V = 13, Vp = 16, half = Vp / 2;
  Vec logits = random_vec(static_cast<size_t>(N) * Vp, 61, -4.0f, 4.0f);
  for (int n = 0; n < N; ++n)
    for (int j = V; j < Vp; ++j) logits[n * Vp + j] = 50.0f;
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = (n * 5 + 1) % V;  // both halves own some targets
  targets[0] = 0;
  targets[1] = V - 1;

  std::vector<XentRank> unsplit{{0, Vp, logits, {}, {}, {}}};
  const Vec losses_unsplit = xent_forward_tp(unsplit, targets, N, V);
  const float dloss = 0.25f;
  const Vec dlogits_unsplit = xent_backward_rank(unsplit[0], targets, dloss, N, V);

  std::vector<XentRank> halves{{0, half, {}, {}, {}, {}}, {half, half, {}, {}, {}, {}}};
  for (auto& r : halves)
    for (int n = 0; n < N; ++n)
      r.logits.insert(r.logits.end(), logits.begin() + n * Vp + r.vocab_start,
                      logits.begin() + n * Vp + r.vocab_start + r.Vl);
  const Vec losses_split = xent_forward_tp(halves, targets, N, V);
  expect_close(losses_split, to_double(losses_unsplit), 1e-6, 1e-6, "split losses");
  expect_close(losses_split, xent_ref(to_double(logits), targets, N, Vp, V), 1e-5, 1e-6,
               "split losses vs reference");
  for (const auto& r : halves) {
    const Vec dlogits = xent_backward_rank(r, targets, dloss, N, V);
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < r.Vl; ++j)
        EXPECT_NEAR(dlogits[n * r.Vl + j], dlogits_unsplit[n * Vp + r.vocab_start + j], 1e-7)
            << "row " << n << " column " << r.vocab_start + j;
  }
}

TEST(CpuKernels, CrossEntropyRankWithOnlyPadding) {
  // A TP rank whose columns all lie beyond the real vocabulary contributes nothing.
  const int N = 4, V = 13, start = 16, Vl = 8;
  const Vec logits = random_vec(static_cast<size_t>(N) * Vl, 62);
  const std::vector<int32_t> targets{0, 5, 12, 3};
  Vec row_max(N, kNaN), sum_exp(N, kNaN), target_logit(N, kNaN);
  backend().xent_row_max(row_max.data(), logits.data(), N, Vl, start, V);
  for (float m : row_max) EXPECT_EQ(m, -kInf);
  backend().xent_partial_sums(sum_exp.data(), target_logit.data(), logits.data(), row_max.data(),
                              targets.data(), N, Vl, start, V);
  const Vec finite_max(N, 1.5f);  // as after the MAX all-reduce with the other ranks
  for (const Vec* m : std::vector<const Vec*>{&row_max, &finite_max}) {
    backend().xent_partial_sums(sum_exp.data(), target_logit.data(), logits.data(), m->data(),
                                targets.data(), N, Vl, start, V);
    for (int n = 0; n < N; ++n) {
      EXPECT_EQ(sum_exp[n], 0.0f);
      EXPECT_EQ(target_logit[n], 0.0f);
    }
  }
  const Vec total_sum(N, 3.0f);
  Vec dlogits(logits.size(), kNaN);
  backend().xent_backward(dlogits.data(), logits.data(), finite_max.data(), total_sum.data(),
                          targets.data(), 1.0f, N, Vl, start, V);
  for (float g : dlogits) EXPECT_EQ(g, 0.0f);
}

// ---- optimizer -------------------------------------------------------------------------------

TEST(CpuKernels, SumSquares) {
  for (size_t n : {size_t{0}, size_t{13}, size_t{300007}}) {
    const Vec x = random_vec(n, 70, -3.0f, 3.0f);
    double expected = 0.0;
    for (float v : x) expected += static_cast<double>(v) * v;
    const double got = backend().sum_squares(x.data(), n);
    EXPECT_NEAR(got, expected, 1e-12 * expected) << "n = " << n;
    EXPECT_EQ(backend().sum_squares(x.data(), n), got) << "not deterministic, n = " << n;
  }
}

TEST(CpuKernels, AdamWMatchesPyTorchFormula) {
  const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, wd = 0.1f, grad_scale = 0.5f;
  for (size_t n : {size_t{37}, size_t{100003}}) {
    Vec param = random_vec(n, 80), m(n, 0.0f), v(n, 0.0f);
    for (int step = 1; step <= 3; ++step) {
      const Vec grad = random_vec(n, 81 + step, -2.0f, 2.0f);
      // Reference in double from the kernel's fp32 state before this step.
      DVec p_ref = to_double(param), m_ref = to_double(m), v_ref = to_double(v);
      backend().adamw_update(param.data(), grad.data(), m.data(), v.data(), n, lr, beta1, beta2,
                             eps, wd, grad_scale, step);
      // PyTorch AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
      // p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
      const double bc1 = 1.0 - std::pow(double{beta1}, step);
      const double bc2 = 1.0 - std::pow(double{beta2}, step);
      for (size_t i = 0; i < n; ++i) {
        const double g = double{grad[i]} * grad_scale;
        p_ref[i] *= 1.0 - double{lr} * wd;
        m_ref[i] = beta1 * m_ref[i] + (1.0 - beta1) * g;
        v_ref[i] = beta2 * v_ref[i] + (1.0 - beta2) * g * g;
        p_ref[i] -= lr / bc1 * m_ref[i] / (std::sqrt(v_ref[i]) / std::sqrt(bc2) + eps);
      }
      const std::string at = " (n=" + std::to_string(n) + ", step " + std::to_string(step) + ")";
      // A few fp32 ulps of |p| ~ 1 (the update itself is ~lr = 3e-3).
      expect_close(param, p_ref, 0.0, 3e-7, "adamw param" + at);
      expect_close(m, m_ref, 1e-6, 1e-8, "adamw m" + at);
      expect_close(v, v_ref, 1e-6, 1e-8, "adamw v" + at);
    }
  }
}

}  // namespace
