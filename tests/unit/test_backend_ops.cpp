// Every kernel op on every backend, from one table (in the manner of ggml's test-backend-ops).
//
// A row of the table is one op on one shape: the tensors it reads and writes, how their
// starting values are made, the kernel calls, a straightforward double-precision reference,
// the gradients to check by finite differences, and the tolerances. Each row runs on every
// backend that kernels/registry.h lists, as three tests:
//   MatchesReference   the CPU backend against the double-precision loops, elementwise within
//                      rtol * |expected| + atol; any other backend against the CPU backend,
//                      max |x - cpu| / max |cpu| per tensor (1e-5 for elementwise and row-local
//                      ops, 1e-4 where long sums are reordered); then the row's exact facts
//                      (causal zeros, padded vocabulary columns, in-place == out-of-place, ...)
//   BackwardMatchesFiniteDifferences   each backward's gradient against central differences
//                      of the reference (rows whose reference is cheap enough)
//   KeepsConventions   kernels/backend.h's rules on a second run over the same buffers:
//                      inputs come back unchanged, written (=) outputs repeat, accumulated (+=)
//                      outputs add as much again, buffers passed as null stay untouched.
// Written outputs start as NaN (every element must be written); accumulated ones start from
// random values or zeros. Shapes are small and awkward (channels that are not multiples of 32,
// several column-sum chunks, vocabulary shards with padded columns and shards that own no
// column) plus larger ones that reach the vector bodies, OpenMP splits and causal tiles.
//
// After the table: per-backend tests that are not one op (memory, sum_squares, cache-position
// errors) and the whole GPT-2 step on CUDA against the CPU. A backend that is not usable here
// (CUDA without a device, or not built) skips with BackendInfo::why_not.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/isa.h"
#include "kernels/registry.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "parallel/mpi_comm.h"
#include "support_errors.h"

namespace shardlm {
namespace {

using Vec = std::vector<float>;
using DVec = std::vector<double>;
using Ints = std::vector<int32_t>;
using testing::expect_error;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
constexpr double kTol = 1e-5;           // parity: elementwise and row-local ops
constexpr double kReductionTol = 1e-4;  // parity: column sums, GEMMs over long inner dimensions

// ---- values ---------------------------------------------------------------------------------

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

Vec nans(size_t n) {
  return Vec(n, kNaN);
}

DVec to_double(const Vec& v) {
  return DVec(v.begin(), v.end());
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// "name@k": the tensor of step, position or rank k.
std::string at(std::string name, long k) {
  name += '@';
  name += std::to_string(k);
  return name;
}

// sum_i a[i] * w[i]: the scalar loss whose gradient w.r.t. an output is `w` (used as dout).
double dot(const DVec& a, const Vec& w) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * w[i];
  return s;
}

// ---- comparisons ----------------------------------------------------------------------------

struct Tol {
  double rtol = 0.0, atol = 0.0;
};

// `actual` matches `expected` elementwise within rtol * |e| + atol (equal values, infinities
// included, always match; NaN never does).
void expect_close(const Vec& actual, const DVec& expected, Tol tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] == expected[i]) continue;
    const double err = std::abs(actual[i] - expected[i]);
    if (!(err <= tol.rtol * std::abs(expected[i]) + tol.atol) && reported++ < 5) {
      ADD_FAILURE() << what << "[" << i << "] = " << actual[i] << ", expected " << expected[i];
    }
  }
}

// max |got - want| / max |want| over the finite entries of want; non-finite entries of want
// must be matched exactly (e.g. the -inf row max of a shard with no valid column).
void expect_max_rel(const Vec& got, const Vec& want, double tol, const std::string& what) {
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
  EXPECT_LE(rel, tol) << what << ": max error " << worst << " at [" << worst_index << "] (got "
                      << got[worst_index] << ", cpu " << want[worst_index] << "), max |cpu| "
                      << scale;
}

using LossFn = std::function<double(const DVec&)>;

// Central finite differences of a double-precision loss at `at`, on every coordinate of
// `candidates` (all of `at` when empty) or on `max_coords` sampled ones.
struct NumericGradient {
  std::vector<size_t> coords;  // the coordinates differentiated
  DVec values;                 // d loss / d at[coords[k]]
  double max_abs = 0.0;        // the largest |values[k]|
};

NumericGradient central_differences(const LossFn& loss, const Vec& at, size_t max_coords,
                                    std::vector<size_t> candidates) {
  NumericGradient g;
  g.coords = std::move(candidates);
  if (g.coords.empty()) {
    g.coords.resize(at.size());
    for (size_t i = 0; i < g.coords.size(); ++i) g.coords[i] = i;
  }
  if (max_coords != 0 && g.coords.size() > max_coords) {
    std::shuffle(g.coords.begin(), g.coords.end(), std::mt19937(1234));
    g.coords.resize(max_coords);
  }
  DVec x = to_double(at);
  g.values.resize(g.coords.size());
  for (size_t k = 0; k < g.coords.size(); ++k) {
    const size_t i = g.coords[k];
    const double h = 1e-5 * std::max(1.0, std::abs(x[i]));
    const double x0 = x[i];
    x[i] = x0 + h;
    const double up = loss(x);
    x[i] = x0 - h;
    const double down = loss(x);
    x[i] = x0;
    g.values[k] = (up - down) / (2 * h);
    g.max_abs = std::max(g.max_abs, std::abs(g.values[k]));
  }
  return g;
}

// The kernel's gradient `grad` against the numeric one. The tolerance is relative to each
// entry and to the largest gradient (fp32 kernels vs exact derivatives).
void expect_gradient(const std::string& what, const NumericGradient& numeric, const Vec& grad,
                     double rtol) {
  int reported = 0;
  for (size_t k = 0; k < numeric.coords.size(); ++k) {
    const size_t i = numeric.coords[k];
    ASSERT_LT(i, grad.size()) << what;
    const double want = numeric.values[k];
    const double err = std::abs(grad[i] - want);
    if (!(err <= rtol * (std::abs(want) + numeric.max_abs) + 1e-7) && reported++ < 5) {
      ADD_FAILURE() << what << " gradient [" << i << "]: kernel " << grad[i]
                    << ", finite difference " << want << " (max |grad| " << numeric.max_abs << ")";
    }
  }
}

// ---- the harness: one op case and its tensors on a backend ----------------------------------

// What an op does with a tensor, which decides how it starts and what is checked.
enum class Role {
  kInput,        // read only: must come back unchanged
  kWritten,      // starts as NaN, every element written (=): a second run repeats it
  kAccumulated,  // starts from the row's values, the op adds (+=): a second run adds as much again
  kUnused,       // passed to the op as null: must come back unchanged
  kScratch,      // workspace: garbage in and out, never compared
};

struct TensorSpec {
  std::string name;
  Role role;
  Vec values;         // the starting contents
  Tol ref{};          // the CPU backend against the double-precision reference
  double parity = 0;  // any other backend against the CPU backend (max-relative)
  Tol rerun{};        // KeepsConventions: a second run against the first (see Role)
};

using Tensors = std::map<std::string, Vec>;
using DTensors = std::map<std::string, DVec>;

class Buffers;

// loss = sum_i output[i] * dout[i] (or * scale when dout is empty), differentiated w.r.t. `wrt`
// through the reference and compared with the kernel's gradient tensor `grad`.
struct GradCheck {
  std::string grad, wrt, output, dout;
  double scale = 1.0;
  size_t samples = 0;  // coordinates checked, 0 for every one
  double rtol = 1e-4;
  std::vector<size_t> coords{};  // the coordinates to sample from (empty: all of wrt)
};

struct Case {
  std::vector<TensorSpec> tensors;
  std::map<std::string, Ints> ints;  // int32 inputs (tokens, targets)
  std::function<void(KernelBackend&, Buffers&)> run;
  // Expected outputs by name, from every tensor's starting value (`before`, in double) and,
  // for ops checked step by step from their own state, the results (`after`; a row with
  // `grads` must not read it: its finite differences are shared by every backend).
  std::function<DTensors(const DTensors& before, const Tensors& after)> reference;
  std::vector<GradCheck> grads;
  // Exact facts checked on every backend, and gradient checks that are not a GradCheck.
  std::function<void(const Tensors& before, const Tensors& after)> check;
  std::function<void(const Tensors& before, const Tensors& after)> gradient_check;

  const TensorSpec& spec(const std::string& name) const {
    for (const TensorSpec& t : tensors)
      if (t.name == name) return t;
    throw std::invalid_argument("no tensor named " + name);
  }
  Tensors before() const {
    Tensors out;
    for (const TensorSpec& t : tensors) out[t.name] = t.values;
    return out;
  }
  bool has_gradients() const { return !grads.empty() || gradient_check; }
};

// A case's tensors in one backend's memory, by name.
class Buffers {
 public:
  Buffers(KernelBackend& be, const Case& c) : be_(be) {
    for (const TensorSpec& t : c.tensors) {
      floats_[t.name] = {be.alloc_floats(t.values.size()), t.values.size()};
      upload(t.name, t.values);
    }
    for (const auto& [name, values] : c.ints) {
      int32_t* p = be.alloc_ints(values.size());
      be.copy_from_host(p, values.data(), values.size() * sizeof(int32_t));
      ints_[name] = p;
    }
  }
  ~Buffers() {
    for (auto& [name, b] : floats_) be_.free_memory(b.first);
    for (auto& [name, p] : ints_) be_.free_memory(p);
  }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;

  float* operator[](const std::string& name) const { return find(floats_, name).first; }
  const int32_t* ints(const std::string& name) const { return find(ints_, name); }
  Vec download(const std::string& name) const {
    const auto& [p, n] = find(floats_, name);
    Vec out(n);
    be_.copy_to_host(out.data(), p, n * sizeof(float));
    return out;
  }
  void upload(const std::string& name, const Vec& values) {
    const auto& [p, n] = find(floats_, name);
    if (values.size() != n) throw std::invalid_argument("wrong size for tensor " + name);
    be_.copy_from_host(p, values.data(), n * sizeof(float));
  }
  Tensors download_all() const {
    Tensors out;
    for (const auto& [name, b] : floats_) out[name] = download(name);
    return out;
  }

 private:
  template <typename Map>
  static const typename Map::mapped_type& find(const Map& m, const std::string& name) {
    const auto it = m.find(name);
    if (it == m.end()) throw std::invalid_argument("no tensor named " + name);
    return it->second;
  }
  KernelBackend& be_;
  std::map<std::string, std::pair<float*, size_t>> floats_;
  std::map<std::string, int32_t*> ints_;
};

// Runs the case once on `be` from its starting values; returns every float tensor.
Tensors run_case(KernelBackend& be, const Case& c) {
  Buffers t(be, c);
  c.run(be, t);
  be.synchronize();
  return t.download_all();
}

DTensors to_double(const Tensors& t) {
  DTensors out;
  for (const auto& [name, v] : t) out[name] = to_double(v);
  return out;
}

bool compared(Role r) {
  return r != Role::kInput && r != Role::kUnused && r != Role::kScratch;
}

// ---- tensor shorthands for the rows --------------------------------------------------------

TensorSpec input(std::string name, Vec values) {
  return {std::move(name), Role::kInput, std::move(values)};
}
TensorSpec written(std::string name, size_t n, Tol ref, double parity, Tol rerun = {}) {
  return {std::move(name), Role::kWritten, nans(n), ref, parity, rerun};
}
TensorSpec accumulated(std::string name, Vec start, Tol ref, double parity, Tol rerun) {
  return {std::move(name), Role::kAccumulated, std::move(start), ref, parity, rerun};
}
TensorSpec unused(std::string name, size_t n) {
  return {std::move(name), Role::kUnused, nans(n)};
}

// The gtest name of a shape, e.g. shape_name("matmul", {{"N", 10}, {"C", 12}}) ->
// "matmul_N10_C12".
std::string shape_name(const std::string& op,
                       std::initializer_list<std::pair<const char*, long>> dims) {
  std::string name = op;
  for (const auto& [key, value] : dims) {
    name += '_';
    name += key;
    name += std::to_string(value);
  }
  return name;
}

struct Row {
  std::string name;
  std::function<Case()> make;
};

// A row made from a family's parameters and its case function.
template <typename Params>
Row row(std::string name, const Params& params, Case (*make)(const Params&)) {
  return {std::move(name), [params, make] { return make(params); }};
}

// ---- embeddings -------------------------------------------------------------------------------

struct TokenEmbeddingRow {
  int N, C, vocab_start, Vl;
  Ints tokens;
  uint32_t seed;  // wte; dout and the dwte start follow
  size_t fd_samples;
};

// Tokens below, inside (with repeats) and above a rank's range [vocab_start, vocab_start+Vl).
Ints tokens_around_range(int N, int vocab_start, int Vl) {
  Ints tokens(N);
  for (int n = 0; n < N; ++n) tokens[n] = (n * 5 + 3) % (vocab_start + Vl + 3);
  tokens[0] = vocab_start;
  tokens[1] = vocab_start + Vl - 1;
  tokens[2] = vocab_start;
  return tokens;
}

DVec token_embedding_ref(const DVec& wte, const Ints& tokens, int C, int vocab_start, int Vl) {
  DVec out(tokens.size() * C, 0.0);
  for (size_t n = 0; n < tokens.size(); ++n)
    if (tokens[n] >= vocab_start && tokens[n] < vocab_start + Vl)
      for (int c = 0; c < C; ++c) out[n * C + c] = wte[(tokens[n] - vocab_start) * C + c];
  return out;
}

Case token_embedding_case(const TokenEmbeddingRow& r) {
  const size_t NC = static_cast<size_t>(r.N) * r.C, VC = static_cast<size_t>(r.Vl) * r.C;
  Case c;
  c.ints["tokens"] = r.tokens;
  c.tensors = {input("wte", random_vec(VC, r.seed)),
               written("out", NC, {0, 0}, 0),  // including the rows of other ranks
               input("dout", random_vec(NC, r.seed + 1)),
               // Same additions in the same order on every backend: equal, not close.
               accumulated("dwte", random_vec(VC, r.seed + 2), {}, 0, {1e-6, 1e-6})};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.token_embedding_forward(t["out"], t.ints("tokens"), t["wte"], r.N, r.C, r.vocab_start, r.Vl);
    be.token_embedding_backward(t["dwte"], t["dout"], t.ints("tokens"), r.N, r.C, r.vocab_start,
                                r.Vl);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    return DTensors{{"out", token_embedding_ref(in.at("wte"), r.tokens, r.C, r.vocab_start, r.Vl)}};
  };
  c.grads = {{"dwte", "wte", "out", "dout", 1.0, r.fd_samples}};
  return c;
}

Row token_embedding(const TokenEmbeddingRow& r) {
  const std::string name = shape_name(
      "token_embedding", {{"N", r.N}, {"C", r.C}, {"start", r.vocab_start}, {"Vl", r.Vl}});
  return row(name, r, token_embedding_case);
}

struct PositionEmbeddingRow {
  int B, T, C, max_T;  // wpe has max_T >= T rows
  uint32_t seed;       // wpe; the token embedding it adds onto, dout and the dwpe start follow
  bool dwpe_from_zero;
  Tol dwpe_rerun;
};

Case position_embedding_case(const PositionEmbeddingRow& r) {
  const size_t BTC = static_cast<size_t>(r.B) * r.T * r.C;
  const size_t wpe_size = static_cast<size_t>(r.max_T) * r.C;
  Case c;
  c.tensors = {
      input("wpe", random_vec(wpe_size, r.seed)),
      // The forward adds onto the token embedding.
      accumulated("out", random_vec(BTC, r.seed + 1), {1e-7, 0}, 0, {1e-6, 1e-6}),
      input("dout", random_vec(BTC, r.seed + 2)),
      accumulated("dwpe", r.dwpe_from_zero ? Vec(wpe_size, 0.0f) : random_vec(wpe_size, r.seed + 3),
                  {}, 0, r.dwpe_rerun)};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.position_embedding_forward(t["out"], t["wpe"], r.B, r.T, r.C);
    be.position_embedding_backward(t["dwpe"], t["dout"], r.B, r.T, r.C);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    DVec out = in.at("out");
    const DVec& wpe = in.at("wpe");
    for (int b = 0; b < r.B; ++b)
      for (int t = 0; t < r.T; ++t)
        for (int ch = 0; ch < r.C; ++ch)
          out[(static_cast<size_t>(b) * r.T + t) * r.C + ch] += wpe[t * r.C + ch];
    return DTensors{{"out", out}};
  };
  c.grads = {{"dwpe", "wpe", "out", "dout"}};
  c.check = [r](const Tensors& before, const Tensors& after) {
    // Rows of wpe at or beyond T get no gradient.
    for (size_t i = static_cast<size_t>(r.T) * r.C; i < before.at("dwpe").size(); ++i)
      ASSERT_EQ(after.at("dwpe")[i], before.at("dwpe")[i]) << "dwpe[" << i << "]";
  };
  return c;
}

Row position_embedding(const PositionEmbeddingRow& r) {
  const std::string name =
      shape_name("position_embedding", {{"B", r.B}, {"T", r.T}, {"C", r.C}, {"maxT", r.max_T}});
  return row(name, r, position_embedding_case);
}

// ---- layernorm --------------------------------------------------------------------------------

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

// out = (x - mean) * rstd * w + b against the reference, absolutely, at the scale its fp32
// terms round at: x - mean cancels, so mean's rounding to f32 (u/2 |mean|) reaches out times
// rstd |w| on every element, and rstd, the products and the bias add round at |norm w| and
// |b|: about 2.5 u of S = max |mean| rstd max |w| + max |norm w| + max |b| to first order; 4 u
// is allowed (the kernel's worst on these rows is 1.7 u with gcc and clang, at every ISA level,
// vectorized or not). An element where norm * w cancels b is near zero with the same absolute
// error as the rest, so a tolerance relative to that element (as this row had) is wrong: it
// failed clang's build at 2e-4 relative on such elements. A wrong eps, a C - 1 or a float
// mean over a long row is far more than 4 u.
Tol layernorm_out_tol(const LayerNormRef& ln, const DVec& w, const DVec& b, int N, int C) {
  double mean_rstd = 0.0, norm_w = 0.0;
  for (int n = 0; n < N; ++n) mean_rstd = std::max(mean_rstd, std::abs(ln.mean[n]) * ln.rstd[n]);
  for (size_t i = 0; i < ln.out.size(); ++i)
    norm_w = std::max(norm_w, std::abs(ln.out[i] - b[i % C]));
  const double max_w = *std::max_element(w.begin(), w.end());  // w > 0 here
  double max_b = 0.0;
  for (double v : b) max_b = std::max(max_b, std::abs(v));
  const double u = std::numeric_limits<float>::epsilon() / 2;
  return {0.0, 4 * u * (mean_rstd * max_w + norm_w + max_b)};
}

struct LayerNormRow {
  int N, C;
  float lo, hi;  // the input's range: a nonzero or large mean, as the residual stream has
  size_t fd_samples;
  bool fd = true;
};

Case layernorm_case(const LayerNormRow& r) {
  const size_t NC = static_cast<size_t>(r.N) * r.C;
  const Tol twice{1e-5, 1e-6};
  const Vec x = random_vec(NC, 10, r.lo, r.hi), w = random_vec(r.C, 11, 0.5f, 1.5f),
            b = random_vec(r.C, 12);  // [N, C], [C], [C]
  const Tol out_tol =
      layernorm_out_tol(layernorm_ref(to_double(x), to_double(w), to_double(b), r.N, r.C),
                        to_double(w), to_double(b), r.N, r.C);
  Case c;
  c.tensors = {input("inp", x), input("weight", w), input("bias", b),
               written("out", NC, out_tol, kTol), written("mean", r.N, {1e-5, 1e-7}, kTol),
               written("rstd", r.N, {1e-5, 0}, kTol), input("dout", random_vec(NC, 13)),
               // dinp is the residual stream (+=); dweight and dbias accumulate too.
               accumulated("dinp", random_vec(NC, 14), {}, kTol, twice),
               accumulated("dweight", random_vec(r.C, 15), {}, kReductionTol, twice),
               accumulated("dbias", random_vec(r.C, 16), {}, kReductionTol, twice)};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.layernorm_forward(t["out"], t["mean"], t["rstd"], t["inp"], t["weight"], t["bias"], r.N,
                         r.C);
    be.layernorm_backward(t["dinp"], t["dweight"], t["dbias"], t["dout"], t["inp"], t["weight"],
                          t["mean"], t["rstd"], r.N, r.C);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    LayerNormRef ln = layernorm_ref(in.at("inp"), in.at("weight"), in.at("bias"), r.N, r.C);
    return DTensors{{"out", ln.out}, {"mean", ln.mean}, {"rstd", ln.rstd}};
  };
  if (r.fd)
    for (const char* x : {"inp", "weight", "bias"})
      c.grads.push_back({std::string("d") + x, x, "out", "dout", 1.0, r.fd_samples});
  return c;
}

Row layernorm(const LayerNormRow& r) {
  return row(shape_name("layernorm", {{"N", r.N}, {"C", r.C}}), r, layernorm_case);
}

// ---- RMSNorm ----------------------------------------------------------------------------------

struct RmsNormRef {
  DVec out, rstd;
};

RmsNormRef rmsnorm_ref(const DVec& x, const DVec& w, int N, int C, double eps) {
  RmsNormRef r{DVec(x.size()), DVec(N)};
  for (int n = 0; n < N; ++n) {
    double sq = 0.0;
    for (int c = 0; c < C; ++c) sq += x[n * C + c] * x[n * C + c];
    const double s = 1.0 / std::sqrt(sq / C + eps);
    for (int c = 0; c < C; ++c) r.out[n * C + c] = x[n * C + c] * s * w[c];
    r.rstd[n] = s;
  }
  return r;
}

struct RmsNormRow {
  int N, C;
  float eps;
  float lo, hi;  // the input's range
  size_t fd_samples;
  bool fd = true;
};

Case rmsnorm_case(const RmsNormRow& r) {
  const size_t NC = static_cast<size_t>(r.N) * r.C;
  const Tol twice{1e-5, 1e-6};
  Case c;
  c.tensors = {input("inp", random_vec(NC, 17, r.lo, r.hi)),
               input("weight", random_vec(r.C, 18, 0.5f, 1.5f)),
               written("out", NC, {1e-5, 1e-6}, kTol), written("rstd", r.N, {1e-5, 0}, kTol),
               input("dout", random_vec(NC, 19)),
               // dinp is the residual stream (+=); dweight accumulates.
               accumulated("dinp", random_vec(NC, 20), {}, kTol, twice),
               accumulated("dweight", random_vec(r.C, 21), {}, kReductionTol, twice)};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.rmsnorm_forward(t["out"], t["rstd"], t["inp"], t["weight"], r.N, r.C, r.eps);
    be.rmsnorm_backward(t["dinp"], t["dweight"], t["dout"], t["inp"], t["weight"], t["rstd"], r.N,
                        r.C);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    RmsNormRef ref = rmsnorm_ref(in.at("inp"), in.at("weight"), r.N, r.C, r.eps);
    return DTensors{{"out", ref.out}, {"rstd", ref.rstd}};
  };
  if (r.fd)
    for (const char* x : {"inp", "weight"})
      c.grads.push_back({std::string("d") + x, x, "out", "dout", 1.0, r.fd_samples});
  return c;
}

Row rmsnorm(const RmsNormRow& r) {
  std::string name = shape_name("rmsnorm", {{"N", r.N}, {"C", r.C}});
  if (r.eps != 1e-5f) name += "_eps" + std::to_string(static_cast<int>(-std::log10(r.eps)));
  return row(name, r, rmsnorm_case);
}

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

struct MatmulRow {
  int N, C, OC;
  bool bias;             // forward bias and backward dbias; else both null
  bool dinp;             // else dinp null (the first layer)
  bool grads_from_zero;  // dweight/dbias start at 0, else from random values
  size_t fd_samples;
  bool fd = true;
  Tol out_ref = {1e-5, 1e-6};  // fp32 sums of C products: more slack for a longer C
};

Case matmul_case(const MatmulRow& r) {
  const size_t NC = static_cast<size_t>(r.N) * r.C, NOC = static_cast<size_t>(r.N) * r.OC;
  const size_t OCC = static_cast<size_t>(r.OC) * r.C;
  // From zero a second run doubles exactly up to rounding; from random values the
  // sum may cancel to near zero, so it gets an absolute slack.
  const Tol twice = r.grads_from_zero ? Tol{1e-6, 1e-7} : Tol{1e-6, 1e-5};
  Case c;
  c.tensors = {
      input("inp", random_vec(NC, 20)),
      input("weight", random_vec(OCC, 21)),
      input("bias", random_vec(r.OC, 22)),
      written("out", NOC, r.out_ref, kTol, {1e-6, 1e-7}),
      input("dout", random_vec(NOC, 23)),
      r.dinp ? written("dinp", NC, {}, kTol, {1e-6, 1e-7}) : unused("dinp", NC),
      accumulated("dweight", r.grads_from_zero ? Vec(OCC, 0.0f) : random_vec(OCC, 24), {},
                  kReductionTol, twice),
      r.bias ? accumulated("dbias", r.grads_from_zero ? Vec(r.OC, 0.0f) : random_vec(r.OC, 25), {},
                           kReductionTol, twice)
             : unused("dbias", r.OC)};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.matmul_forward(t["out"], t["inp"], t["weight"], r.bias ? t["bias"] : nullptr, r.N, r.C,
                      r.OC);
    be.matmul_backward(r.dinp ? t["dinp"] : nullptr, t["dweight"], r.bias ? t["dbias"] : nullptr,
                       t["dout"], t["inp"], t["weight"], r.N, r.C, r.OC);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    const DVec& bias = in.at("bias");
    return DTensors{{"out", matmul_ref(in.at("inp"), in.at("weight"), r.bias ? &bias : nullptr, r.N,
                                       r.C, r.OC)}};
  };
  if (r.fd) {
    if (r.dinp) c.grads.push_back({"dinp", "inp", "out", "dout", 1.0, r.fd_samples});
    c.grads.push_back({"dweight", "weight", "out", "dout", 1.0, r.fd_samples});
    if (r.bias) c.grads.push_back({"dbias", "bias", "out", "dout", 1.0, r.fd_samples});
  }
  return c;
}

Row matmul(const MatmulRow& r) {
  std::string name = shape_name("matmul", {{"N", r.N}, {"C", r.C}, {"OC", r.OC}});
  if (!r.bias) name += "_nobias";
  if (!r.dinp) name += "_nodinp";
  return row(name, r, matmul_case);
}

// ---- attention --------------------------------------------------------------------------------

// qkv [B,T,3,NH,hd] -> out [B,T,NH,hd] and lse [B,NH,T], the log-sum-exp of each causal softmax
// row's scaled scores.
void attention_ref(const DVec& qkv, int B, int T, int NH, int hd, DVec* out, DVec* lse) {
  const int C = NH * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  out->assign(static_cast<size_t>(B) * T * C, 0.0);
  if (lse) lse->assign(static_cast<size_t>(B) * NH * T, 0.0);
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
        if (lse) (*lse)[(static_cast<size_t>(b) * NH + h) * T + t] = m + std::log(sum);
        for (int t2 = 0; t2 <= t; ++t2) {
          p[t2] /= sum;
          const double* v = &qkv[(static_cast<size_t>(b) * T + t2) * 3 * C + 2 * C + h * hd];
          for (int d = 0; d < hd; ++d)
            (*out)[(static_cast<size_t>(b) * T + t) * C + h * hd + d] += p[t2] * v[d];
        }
      }
}

struct AttentionRow {
  int B, T, NH, hd;
  float range;  // qkv in [-range, range]
  size_t fd_samples;
};

Case attention_case(const AttentionRow& r) {
  const size_t N = static_cast<size_t>(r.B) * r.T, C = static_cast<size_t>(r.NH) * r.hd;
  Case c;
  c.tensors = {input("qkv", random_vec(N * 3 * C, 30, -r.range, r.range)),
               written("out", N * C, {1e-5, 1e-6}, kTol),
               written("lse", static_cast<size_t>(r.B) * r.NH * r.T, {1e-5, 1e-6}, kTol),
               input("dout", random_vec(N * C, 31)),
               written("dqkv", N * 3 * C, {}, kReductionTol)};  // sums over T and hd
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.attention_forward(t["out"], t["lse"], t["qkv"], r.B, r.T, r.NH, r.hd);
    be.attention_backward(t["dqkv"], t["dout"], t["qkv"], t["out"], t["lse"], r.B, r.T, r.NH, r.hd);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    DTensors expected;
    attention_ref(in.at("qkv"), r.B, r.T, r.NH, r.hd, &expected["out"], &expected["lse"]);
    return expected;
  };
  c.grads = {{"dqkv", "qkv", "out", "dout", 1.0, r.fd_samples}};
  return c;
}

Row attention(const AttentionRow& r) {
  return row(shape_name("attention", {{"B", r.B}, {"T", r.T}, {"NH", r.NH}, {"hd", r.hd}}), r,
             attention_case);
}

// ---- KV-cached attention -------------------------------------------------------------------

struct DecodeStep {
  int pos0, Tq;
};

struct DecodeRow {
  int NH, hd, max_seq;
  std::vector<DecodeStep> steps;  // appended and attended in this order
};

// The cache after appending the k and v parts of qkv's Tq rows at positions pos0.. .
void kv_append_ref(DVec& k_cache, DVec& v_cache, const DVec& qkv, DecodeStep s, int NH, int hd,
                   int max_seq) {
  const int C = NH * hd;
  for (int i = 0; i < s.Tq; ++i)
    for (int h = 0; h < NH; ++h)
      for (int d = 0; d < hd; ++d) {
        const size_t at = (static_cast<size_t>(h) * max_seq + s.pos0 + i) * hd + d;
        k_cache[at] = qkv[static_cast<size_t>(i) * 3 * C + C + h * hd + d];
        v_cache[at] = qkv[static_cast<size_t>(i) * 3 * C + 2 * C + h * hd + d];
      }
}

// Query i (position pos0 + i) against cache positions 0..pos0+i, scale 1/sqrt(hd).
DVec decode_ref(const DVec& qkv, const DVec& k_cache, const DVec& v_cache, DecodeStep s, int NH,
                int hd, int max_seq) {
  const int C = NH * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  DVec out(static_cast<size_t>(s.Tq) * C, 0.0);
  for (int i = 0; i < s.Tq; ++i)
    for (int h = 0; h < NH; ++h) {
      const int n = s.pos0 + i + 1;
      DVec p(n);
      double m = -1e300, sum = 0.0;
      for (int j = 0; j < n; ++j) {
        double dotp = 0.0;
        for (int d = 0; d < hd; ++d)
          dotp += qkv[static_cast<size_t>(i) * 3 * C + h * hd + d] *
                  k_cache[(static_cast<size_t>(h) * max_seq + j) * hd + d];
        m = std::max(m, p[j] = dotp * scale);
      }
      for (int j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - m));
      for (int j = 0; j < n; ++j)
        for (int d = 0; d < hd; ++d)
          out[static_cast<size_t>(i) * C + h * hd + d] +=
              p[j] / sum * v_cache[(static_cast<size_t>(h) * max_seq + j) * hd + d];
    }
  return out;
}

Case kv_cache_decode_case(const DecodeRow& r) {
  const size_t C = static_cast<size_t>(r.NH) * r.hd;
  const size_t cache_size = static_cast<size_t>(r.NH) * r.max_seq * r.hd;
  Case c;
  // The caches start from random values (copied in, so that a rerun starts over):
  // only the appended positions may change.
  c.tensors = {
      input("k_start", random_vec(cache_size, 40)), input("v_start", random_vec(cache_size, 41)),
      written("k_cache", cache_size, {0, 0}, 0), written("v_cache", cache_size, {0, 0}, 0)};
  for (const DecodeStep s : r.steps) {
    c.tensors.push_back(
        input(at("qkv", s.pos0), random_vec(s.Tq * 3 * C, 42 + s.pos0, -2.0f, 2.0f)));
    c.tensors.push_back(written(at("k_cache", s.pos0), cache_size, {0, 0}, 0));
    c.tensors.push_back(written(at("v_cache", s.pos0), cache_size, {0, 0}, 0));
    c.tensors.push_back(written(at("out", s.pos0), s.Tq * C, {1e-5, 1e-6}, kTol));
  }
  c.run = [r, cache_size](KernelBackend& be, Buffers& t) {
    be.copy(t["k_cache"], t["k_start"], cache_size * sizeof(float));
    be.copy(t["v_cache"], t["v_start"], cache_size * sizeof(float));
    for (const DecodeStep s : r.steps) {
      be.kv_cache_append(t["k_cache"], t["v_cache"], t[at("qkv", s.pos0)], s.pos0, s.Tq, r.NH, r.hd,
                         r.max_seq);
      // The cache after each step, so a later step cannot hide an earlier one's error.
      be.copy(t[at("k_cache", s.pos0)], t["k_cache"], cache_size * sizeof(float));
      be.copy(t[at("v_cache", s.pos0)], t["v_cache"], cache_size * sizeof(float));
      be.attention_decode(t[at("out", s.pos0)], t[at("qkv", s.pos0)], t["k_cache"], t["v_cache"],
                          s.pos0, s.Tq, r.NH, r.hd, r.max_seq);
    }
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    DTensors expected;
    DVec k = in.at("k_start"), v = in.at("v_start");
    for (const DecodeStep s : r.steps) {
      kv_append_ref(k, v, in.at(at("qkv", s.pos0)), s, r.NH, r.hd, r.max_seq);
      expected[at("k_cache", s.pos0)] = k;
      expected[at("v_cache", s.pos0)] = v;
      expected[at("out", s.pos0)] =
          decode_ref(in.at(at("qkv", s.pos0)), k, v, s, r.NH, r.hd, r.max_seq);
    }
    expected["k_cache"] = k;
    expected["v_cache"] = v;
    return expected;
  };
  return c;
}

Row kv_cache_decode(const DecodeRow& r) {
  std::string name =
      shape_name("kv_cache_decode", {{"NH", r.NH}, {"hd", r.hd}, {"max", r.max_seq}});
  for (const DecodeStep s : r.steps) {
    name += '_';
    name += std::to_string(s.Tq);
  }
  return row(name, r, kv_cache_decode_case);
}

// ---- grouped-query attention: RoPE, attention, KV-cached decoding ------------------------------

// Where the heads of a qkv row [KV, g+2, hd] sit: query head h = kv*g + i, then each group's
// key and value head.
struct GqaHeads {
  int KV, g, hd;
  int H() const { return KV * g; }
  size_t row() const { return static_cast<size_t>(KV) * (g + 2) * hd; }
  size_t out_row() const { return static_cast<size_t>(H()) * hd; }
  size_t query(int h) const { return (static_cast<size_t>(h / g) * (g + 2) + h % g) * hd; }
  size_t key(int kv) const { return (static_cast<size_t>(kv) * (g + 2) + g) * hd; }
  size_t value(int kv) const { return key(kv) + hd; }
};

// Hugging Face's tables: angle pos * theta^(-2i/hd), [max_seq, hd/2] each.
std::pair<Vec, Vec> rope_tables(int max_seq, int hd, double theta) {
  Vec cos_t(static_cast<size_t>(max_seq) * (hd / 2)), sin_t(cos_t.size());
  for (int p = 0; p < max_seq; ++p)
    for (int i = 0; i < hd / 2; ++i) {
      const double angle = p * std::pow(theta, -2.0 * i / hd);
      cos_t[static_cast<size_t>(p) * (hd / 2) + i] = static_cast<float>(std::cos(angle));
      sin_t[static_cast<size_t>(p) * (hd / 2) + i] = static_cast<float>(std::sin(angle));
    }
  return {cos_t, sin_t};
}

// qkv with its query and key heads rotated (the rotate-half convention), values untouched.
DVec rope_ref(DVec x, const DVec& cos_t, const DVec& sin_t, int B, int T, int pos0, GqaHeads S) {
  const int half = S.hd / 2;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int kv = 0; kv < S.KV; ++kv)
        for (int head = 0; head <= S.g; ++head) {
          double* v = &x[(static_cast<size_t>(b) * T + t) * S.row() +
                         (static_cast<size_t>(kv) * (S.g + 2) + head) * S.hd];
          for (int i = 0; i < half; ++i) {
            const double c = cos_t[static_cast<size_t>(pos0 + t) * half + i];
            const double s = sin_t[static_cast<size_t>(pos0 + t) * half + i];
            const double x1 = v[i], x2 = v[i + half];
            v[i] = x1 * c - x2 * s;
            v[i + half] = x2 * c + x1 * s;
          }
        }
  return x;
}

struct RopeRow {
  int B, T, pos0, KV, g, hd;
  size_t fd_samples;
};

Case rope_case(const RopeRow& r) {
  const GqaHeads S{r.KV, r.g, r.hd};
  const size_t n = static_cast<size_t>(r.B) * r.T * S.row();
  const int max_seq = r.pos0 + r.T + 3;  // rows past the last position must not matter
  auto [cos_t, sin_t] = rope_tables(max_seq, r.hd, 10000.0);
  Case c;
  // In place: "qkv" and "dqkv" start as copies of the inputs.
  c.tensors = {input("cos", cos_t),
               input("sin", sin_t),
               input("qkv_in", random_vec(n, 90, -2.0f, 2.0f)),
               written("qkv", n, {1e-6, 1e-6}, kTol, {0, 0}),
               input("dqkv_in", random_vec(n, 91)),
               written("dqkv", n, {}, kTol, {0, 0})};
  c.run = [r, n](KernelBackend& be, Buffers& t) {
    be.copy(t["qkv"], t["qkv_in"], n * sizeof(float));
    be.rope_forward(t["qkv"], t["cos"], t["sin"], r.B, r.T, r.pos0, r.KV, r.g, r.hd);
    be.copy(t["dqkv"], t["dqkv_in"], n * sizeof(float));
    be.rope_backward(t["dqkv"], t["cos"], t["sin"], r.B, r.T, r.pos0, r.KV, r.g, r.hd);
  };
  c.reference = [r, S](const DTensors& in, const Tensors&) {
    return DTensors{
        {"qkv", rope_ref(in.at("qkv_in"), in.at("cos"), in.at("sin"), r.B, r.T, r.pos0, S)}};
  };
  // The backward is the transpose: d(sum qkv * dqkv_in)/d(qkv_in).
  c.grads = {{"dqkv", "qkv_in", "qkv", "dqkv_in", 1.0, r.fd_samples}};
  c.check = [r, S](const Tensors& before, const Tensors& after) {
    // Value heads come back bit for bit, forward and backward.
    for (const char* name : {"qkv", "dqkv"}) {
      const Vec& got = after.at(name);
      const Vec& start = before.at(std::string(name) + "_in");
      for (int row = 0; row < r.B * r.T; ++row)
        for (int kv = 0; kv < r.KV; ++kv)
          for (int d = 0; d < r.hd; ++d) {
            const size_t at = row * S.row() + S.value(kv) + d;
            ASSERT_EQ(got[at], start[at]) << name << " value head " << kv << " row " << row;
          }
    }
  };
  return c;
}

Row rope(const RopeRow& r) {
  return row(
      shape_name("rope",
                 {{"B", r.B}, {"T", r.T}, {"pos", r.pos0}, {"KV", r.KV}, {"g", r.g}, {"hd", r.hd}}),
      r, rope_case);
}

// qkv [B,T,KV,g+2,hd] -> out [B,T,H,hd], lse [B,H,T]: query head h on key/value head h / g.
void attention_gqa_ref(const DVec& qkv, int B, int T, GqaHeads S, DVec* out, DVec* lse) {
  const int H = S.H(), hd = S.hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  out->assign(static_cast<size_t>(B) * T * S.out_row(), 0.0);
  if (lse) lse->assign(static_cast<size_t>(B) * H * T, 0.0);
  std::vector<double> p(T);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int t = 0; t < T; ++t) {
        const auto row = [&](int t2) { return &qkv[(static_cast<size_t>(b) * T + t2) * S.row()]; };
        const double* q = row(t) + S.query(h);
        double m = -1e300;
        for (int t2 = 0; t2 <= t; ++t2) {
          const double* k = row(t2) + S.key(h / S.g);
          double s = 0.0;
          for (int d = 0; d < hd; ++d) s += q[d] * k[d];
          m = std::max(m, p[t2] = s * scale);
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; ++t2) sum += (p[t2] = std::exp(p[t2] - m));
        if (lse) (*lse)[(static_cast<size_t>(b) * H + h) * T + t] = m + std::log(sum);
        for (int t2 = 0; t2 <= t; ++t2) {
          p[t2] /= sum;
          const double* v = row(t2) + S.value(h / S.g);
          for (int d = 0; d < hd; ++d)
            (*out)[(static_cast<size_t>(b) * T + t) * S.out_row() + h * hd + d] += p[t2] * v[d];
        }
      }
}

struct AttentionGqaRow {
  int B, T, KV, g, hd;
  float range;  // qkv in [-range, range]
  size_t fd_samples;
};

Case attention_gqa_case(const AttentionGqaRow& r) {
  const GqaHeads S{r.KV, r.g, r.hd};
  const size_t N = static_cast<size_t>(r.B) * r.T;
  Case c;
  c.tensors = {input("qkv", random_vec(N * S.row(), 32, -r.range, r.range)),
               written("out", N * S.out_row(), {1e-5, 1e-6}, kTol),
               written("lse", static_cast<size_t>(r.B) * S.H() * r.T, {1e-5, 1e-6}, kTol),
               input("dout", random_vec(N * S.out_row(), 33)),
               written("dqkv", N * S.row(), {}, kReductionTol)};  // sums over T, hd and g
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.attention_gqa_forward(t["out"], t["lse"], t["qkv"], r.B, r.T, r.KV, r.g, r.hd);
    be.attention_gqa_backward(t["dqkv"], t["dout"], t["qkv"], t["out"], t["lse"], r.B, r.T, r.KV,
                              r.g, r.hd);
  };
  c.reference = [r, S](const DTensors& in, const Tensors&) {
    DTensors expected;
    attention_gqa_ref(in.at("qkv"), r.B, r.T, S, &expected["out"], &expected["lse"]);
    return expected;
  };
  c.grads = {{"dqkv", "qkv", "out", "dout", 1.0, r.fd_samples}};
  return c;
}

Row attention_gqa(const AttentionGqaRow& r) {
  return row(
      shape_name("attention_gqa", {{"B", r.B}, {"T", r.T}, {"KV", r.KV}, {"g", r.g}, {"hd", r.hd}}),
      r, attention_gqa_case);
}

// One sequence appended and decoded step by step; the outputs equal attention_gqa_forward's rows
// of the same sequence, and the cache holds its key and value heads.
struct DecodeGqaRow {
  int KV, g, hd, max_seq;
  std::vector<DecodeStep> steps;  // consecutive, from position 0
};

void kv_append_gqa_ref(DVec& k_cache, DVec& v_cache, const DVec& qkv, DecodeStep s, GqaHeads S,
                       int max_seq) {
  for (int i = 0; i < s.Tq; ++i)
    for (int kv = 0; kv < S.KV; ++kv)
      for (int d = 0; d < S.hd; ++d) {
        const size_t at = (static_cast<size_t>(kv) * max_seq + s.pos0 + i) * S.hd + d;
        const size_t row = static_cast<size_t>(s.pos0 + i) * S.row();
        k_cache[at] = qkv[row + S.key(kv) + d];
        v_cache[at] = qkv[row + S.value(kv) + d];
      }
}

// Queries of rows pos0.. of qkv against cache positions 0..pos0+i (cache head h / g).
DVec decode_gqa_ref(const DVec& qkv, const DVec& k_cache, const DVec& v_cache, DecodeStep s,
                    GqaHeads S, int max_seq) {
  const int hd = S.hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  DVec out(static_cast<size_t>(s.Tq) * S.out_row(), 0.0);
  for (int i = 0; i < s.Tq; ++i)
    for (int h = 0; h < S.H(); ++h) {
      const int n = s.pos0 + i + 1;
      const double* q = &qkv[static_cast<size_t>(s.pos0 + i) * S.row() + S.query(h)];
      const size_t head = static_cast<size_t>(h / S.g) * max_seq * hd;
      DVec p(n);
      double m = -1e300, sum = 0.0;
      for (int j = 0; j < n; ++j) {
        double dotp = 0.0;
        for (int d = 0; d < hd; ++d) dotp += q[d] * k_cache[head + j * hd + d];
        m = std::max(m, p[j] = dotp * scale);
      }
      for (int j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - m));
      for (int j = 0; j < n; ++j)
        for (int d = 0; d < hd; ++d)
          out[i * S.out_row() + h * hd + d] += p[j] / sum * v_cache[head + j * hd + d];
    }
  return out;
}

Case kv_cache_decode_gqa_case(const DecodeGqaRow& r) {
  const GqaHeads S{r.KV, r.g, r.hd};
  const int T = r.steps.back().pos0 + r.steps.back().Tq;
  const size_t cache_size = static_cast<size_t>(r.KV) * r.max_seq * r.hd;
  Case c;
  // The caches start from random values (copied in, so that a rerun starts over): only the
  // appended positions may change.
  c.tensors = {input("qkv", random_vec(T * S.row(), 43, -2.0f, 2.0f)),
               input("k_start", random_vec(cache_size, 44)),
               input("v_start", random_vec(cache_size, 45)),
               written("k_cache", cache_size, {0, 0}, 0),
               written("v_cache", cache_size, {0, 0}, 0),
               written("out/full", T * S.out_row(), {1e-5, 1e-6}, kTol),
               written("lse/full", static_cast<size_t>(S.H()) * T, {1e-5, 1e-6}, kTol)};
  for (const DecodeStep s : r.steps) {
    c.tensors.push_back(written(at("k_cache", s.pos0), cache_size, {0, 0}, 0));
    c.tensors.push_back(written(at("v_cache", s.pos0), cache_size, {0, 0}, 0));
    c.tensors.push_back(written(at("out", s.pos0), s.Tq * S.out_row(), {1e-5, 1e-6}, kTol));
  }
  c.run = [r, S, T, cache_size](KernelBackend& be, Buffers& t) {
    be.attention_gqa_forward(t["out/full"], t["lse/full"], t["qkv"], 1, T, r.KV, r.g, r.hd);
    be.copy(t["k_cache"], t["k_start"], cache_size * sizeof(float));
    be.copy(t["v_cache"], t["v_start"], cache_size * sizeof(float));
    for (const DecodeStep s : r.steps) {
      const float* rows = t["qkv"] + s.pos0 * S.row();
      be.kv_cache_append_gqa(t["k_cache"], t["v_cache"], rows, s.pos0, s.Tq, r.KV, r.g, r.hd,
                             r.max_seq);
      // The cache after each step, so a later step cannot hide an earlier one's error.
      be.copy(t[at("k_cache", s.pos0)], t["k_cache"], cache_size * sizeof(float));
      be.copy(t[at("v_cache", s.pos0)], t["v_cache"], cache_size * sizeof(float));
      be.attention_decode_gqa(t[at("out", s.pos0)], rows, t["k_cache"], t["v_cache"], s.pos0, s.Tq,
                              r.KV, r.g, r.hd, r.max_seq);
    }
  };
  c.reference = [r, S, T](const DTensors& in, const Tensors&) {
    DTensors expected;
    attention_gqa_ref(in.at("qkv"), 1, T, S, &expected["out/full"], &expected["lse/full"]);
    DVec k = in.at("k_start"), v = in.at("v_start");
    for (const DecodeStep s : r.steps) {
      kv_append_gqa_ref(k, v, in.at("qkv"), s, S, r.max_seq);
      expected[at("k_cache", s.pos0)] = k;
      expected[at("v_cache", s.pos0)] = v;
      expected[at("out", s.pos0)] = decode_gqa_ref(in.at("qkv"), k, v, s, S, r.max_seq);
    }
    expected["k_cache"] = k;
    expected["v_cache"] = v;
    return expected;
  };
  // On every backend: the decoded rows are the training forward's rows (fp32 rounding apart).
  c.check = [r, S](const Tensors&, const Tensors& after) {
    const Vec& full = after.at("out/full");
    for (const DecodeStep s : r.steps) {
      const size_t first = s.pos0 * S.out_row();
      const DVec want(full.begin() + first, full.begin() + first + s.Tq * S.out_row());
      expect_close(after.at(at("out", s.pos0)), want, {1e-5, 1e-6},
                   at("out", s.pos0) + " against attention_gqa_forward");
    }
  };
  return c;
}

Row kv_cache_decode_gqa(const DecodeGqaRow& r) {
  std::string name = shape_name("kv_cache_decode_gqa",
                                {{"KV", r.KV}, {"g", r.g}, {"hd", r.hd}, {"max", r.max_seq}});
  for (const DecodeStep s : r.steps) {
    name += '_';
    name += std::to_string(s.Tq);
  }
  return row(name, r, kv_cache_decode_gqa_case);
}

// ---- GELU (tanh approximation) ----------------------------------------------------------------

double gelu_ref(double x) {
  const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}

struct GeluRow {
  size_t n;
  uint32_t seed;        // inp; dout follows
  float range;          // inp in [-range, range]
  bool special_values;  // signed zeros, tiny and huge inputs appended
  // Finite differences of the whole loss on every coordinate (small n), else per element.
  bool fd_whole;
};

// d gelu(x) / dx * dout by a central difference of step 1e-6, per element, within
// 1e-5 * (|d| + 1): the check for inputs too many for whole-loss differences.
void expect_gelu_derivative(const Vec& inp, const Vec& dout, const Vec& dinp) {
  for (size_t i = 0; i < inp.size(); ++i) {
    const double x = inp[i];
    const double h = 1e-6;
    const double d = (gelu_ref(x + h) - gelu_ref(x - h)) / (2 * h) * dout[i];
    ASSERT_NEAR(dinp[i], d, 1e-5 * (std::abs(d) + 1.0)) << "x = " << x;
  }
}

Case gelu_case(const GeluRow& r) {
  Vec inp = random_vec(r.n, r.seed, -r.range, r.range);
  if (r.special_values)
    for (float x : {0.0f, -0.0f, 1e-6f, -1e-6f, 20.0f, -20.0f, 90.0f, -90.0f}) inp.push_back(x);
  const size_t n = inp.size();
  Case c;
  // fp32 rounding of the tanh argument alone costs ~1e-6 relative where gelu(x) is tiny.
  c.tensors = {input("inp", inp), written("out", n, {1e-5, 1e-9}, kTol),
               input("dout", random_vec(n, r.seed + 1)), written("dinp", n, {}, kTol)};
  c.run = [n](KernelBackend& be, Buffers& t) {
    be.gelu_forward(t["out"], t["inp"], n);
    be.gelu_backward(t["dinp"], t["inp"], t["dout"], n);
  };
  c.reference = [](const DTensors& in, const Tensors&) {
    DVec y = in.at("inp");
    for (double& x : y) x = gelu_ref(x);
    return DTensors{{"out", y}};
  };
  if (r.fd_whole)
    c.grads = {{"dinp", "inp", "out", "dout", 1.0, 0, 1e-5}};
  else
    c.gradient_check = [](const Tensors& before, const Tensors& after) {
      expect_gelu_derivative(before.at("inp"), before.at("dout"), after.at("dinp"));
    };
  return c;
}

Row gelu(const GeluRow& r) {
  std::string name = shape_name("gelu", {{"n", static_cast<long>(r.n)}});
  if (r.special_values) name += "_special";
  return row(name, r, gelu_case);
}

// ---- SwiGLU -------------------------------------------------------------------------------------

double silu_ref(double x) {
  return x / (1.0 + std::exp(-x));
}

struct SwigluRow {
  int N, F;
  uint32_t seed;        // gu; dout follows
  float range;          // gu in [-range, range]
  bool special_values;  // the first row's gates: signed zeros, tiny and huge values
  size_t fd_samples;
};

Case swiglu_case(const SwigluRow& r) {
  const size_t NF = static_cast<size_t>(r.N) * r.F;
  Vec gu = random_vec(2 * NF, r.seed, -r.range, r.range);
  if (r.special_values) {
    const float special[] = {0.0f, -0.0f, 1e-6f, -1e-6f, 20.0f, -20.0f, 90.0f, -90.0f};
    for (int j = 0; j < std::min<int>(r.F, std::size(special)); ++j) gu[j] = special[j];
  }
  Case c;
  c.tensors = {input("gu", gu), written("out", NF, {1e-5, 1e-7}, kTol),
               input("dout", random_vec(NF, r.seed + 1)), written("dgu", 2 * NF, {}, kTol)};
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.swiglu_forward(t["out"], t["gu"], r.N, r.F);
    be.swiglu_backward(t["dgu"], t["gu"], t["dout"], r.N, r.F);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    const DVec& x = in.at("gu");
    DVec out(static_cast<size_t>(r.N) * r.F);
    for (int n = 0; n < r.N; ++n)
      for (int j = 0; j < r.F; ++j)
        out[static_cast<size_t>(n) * r.F + j] = silu_ref(x[static_cast<size_t>(n) * 2 * r.F + j]) *
                                                x[static_cast<size_t>(n) * 2 * r.F + r.F + j];
    return DTensors{{"out", out}};
  };
  c.grads = {{"dgu", "gu", "out", "dout", 1.0, r.fd_samples}};
  return c;
}

Row swiglu(const SwigluRow& r) {
  std::string name = shape_name("swiglu", {{"N", r.N}, {"F", r.F}});
  if (r.special_values) name += "_special";
  return row(name, r, swiglu_case);
}

// ---- elementwise ------------------------------------------------------------------------------

struct ElementwiseRow {
  size_t n;
  uint32_t seed;  // a; b follows
  float scale;
};

Case elementwise_case(const ElementwiseRow& r) {
  Case c;
  c.tensors = {input("a", random_vec(r.n, r.seed)), input("b", random_vec(r.n, r.seed + 1)),
               written("sum", r.n, {0, 0}, 0),      // add
               written("acc", r.n, {0, 0}, 0),      // a, then add_inplace b
               written("scaled", r.n, {0, 0}, 0)};  // acc, then scale_inplace
  c.run = [r](KernelBackend& be, Buffers& t) {
    be.add(t["sum"], t["a"], t["b"], r.n);
    be.copy(t["acc"], t["a"], r.n * sizeof(float));
    be.add_inplace(t["acc"], t["b"], r.n);
    be.copy(t["scaled"], t["acc"], r.n * sizeof(float));
    be.scale_inplace(t["scaled"], r.scale, r.n);
  };
  // Exact: one fp32 operation per element, so the reference rounds as fp32 does.
  c.reference = [r](const DTensors& in, const Tensors&) {
    DVec sum(r.n), scaled(r.n);
    for (size_t i = 0; i < r.n; ++i) {
      const float s = static_cast<float>(in.at("a")[i]) + static_cast<float>(in.at("b")[i]);
      sum[i] = s;
      scaled[i] = s * r.scale;
    }
    return DTensors{{"sum", sum}, {"acc", sum}, {"scaled", scaled}};
  };
  return c;
}

Row elementwise(const ElementwiseRow& r) {
  return row(shape_name("elementwise", {{"n", static_cast<long>(r.n)}, {"seed", r.seed}}), r,
             elementwise_case);
}

// ---- vocab-parallel cross-entropy ---------------------------------------------------------------

// One TP rank's four cross-entropy steps on its columns [vocab_start, vocab_start + Vl) of the
// logits (row stride Vl); columns at or beyond vocab_size are padding. With the whole
// vocabulary on one rank the losses are the softmax cross-entropy.
struct XentRef {
  DVec row_max, sum_exp, target_logit, losses;
};

XentRef xent_ref(const DVec& logits, const Ints& targets, int N, int Vl, int vocab_start,
                 int vocab_size) {
  const int valid = std::clamp(vocab_size - vocab_start, 0, Vl);
  XentRef r{DVec(N), DVec(N), DVec(N), DVec(N)};
  for (int n = 0; n < N; ++n) {
    const double* row = &logits[static_cast<size_t>(n) * Vl];
    double m = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (int j = 0; j < valid; ++j) m = std::max(m, row[j]);
    for (int j = 0; j < valid; ++j) sum += std::exp(row[j] - m);
    const int local = targets[n] - vocab_start;
    r.row_max[n] = m;
    r.sum_exp[n] = sum;
    r.target_logit[n] = local >= 0 && local < Vl ? row[local] : 0.0;
    r.losses[n] = std::log(sum) + m - r.target_logit[n];
  }
  return r;
}

struct XentRow {
  int N, vocab_size, vocab_start, Vl;
  Ints targets;
  uint32_t seed;    // the logits
  float range;      // logits in [-range, range]
  float pad_value;  // padded columns hold large values: they must not take part
  float dloss;
  size_t fd_samples;
};

Ints targets_pattern(int N, int V, int mul, int add) {
  Ints targets(N);
  for (int n = 0; n < N; ++n) targets[n] = (n * mul + add) % V;
  return targets;
}

// Steps 1-4 on one rank; the in-place backward works on a copy of the logits.
Case cross_entropy_case(const XentRow& r) {
  const size_t NV = static_cast<size_t>(r.N) * r.Vl;
  const int valid = std::clamp(r.vocab_size - r.vocab_start, 0, r.Vl);
  Vec logits = random_vec(NV, r.seed, -r.range, r.range);
  for (int n = 0; n < r.N; ++n)
    for (int j = valid; j < r.Vl; ++j) logits[static_cast<size_t>(n) * r.Vl + j] = r.pad_value;
  // Nothing to normalise on a shard with no valid column: steps 3-4 are not run.
  const auto normalised = [valid](std::string name, size_t n, Tol ref) {
    return valid > 0 ? written(std::move(name), n, ref, kTol) : unused(std::move(name), n);
  };
  Case c;
  c.ints["targets"] = r.targets;
  c.tensors = {input("logits", logits),
               written("row_max", r.N, {0, 0}, 0),
               written("sum_exp", r.N, {1e-5, 1e-6}, kTol),
               written("target_logit", r.N, {0, 0}, 0),
               normalised("losses", r.N, {1e-5, 1e-6}),
               normalised("dlogits", NV, {}),
               normalised("in_place", NV, {})};
  c.run = [r, valid, NV](KernelBackend& be, Buffers& t) {
    const int32_t* targets = t.ints("targets");
    be.xent_row_max(t["row_max"], t["logits"], r.N, r.Vl, r.vocab_start, r.vocab_size);
    be.xent_partial_sums(t["sum_exp"], t["target_logit"], t["logits"], t["row_max"], targets, r.N,
                         r.Vl, r.vocab_start, r.vocab_size);
    if (valid == 0) return;
    be.xent_loss(t["losses"], t["row_max"], t["sum_exp"], t["target_logit"], r.N);
    be.xent_backward(t["dlogits"], t["logits"], t["row_max"], t["sum_exp"], targets, r.dloss, r.N,
                     r.Vl, r.vocab_start, r.vocab_size);
    be.copy(t["in_place"], t["logits"], NV * sizeof(float));
    be.xent_backward(t["in_place"], t["in_place"], t["row_max"], t["sum_exp"], targets, r.dloss,
                     r.N, r.Vl, r.vocab_start, r.vocab_size);
  };
  c.reference = [r, valid](const DTensors& in, const Tensors&) {
    const XentRef x = xent_ref(in.at("logits"), r.targets, r.N, r.Vl, r.vocab_start, r.vocab_size);
    DTensors expected{
        {"row_max", x.row_max}, {"sum_exp", x.sum_exp}, {"target_logit", x.target_logit}};
    if (valid > 0) expected["losses"] = x.losses;
    return expected;
  };
  if (valid > 0) {
    // d(dloss * sum_n loss_n)/dlogits on the real columns; padding is checked below.
    std::vector<size_t> real;
    for (int n = 0; n < r.N; ++n)
      for (int j = 0; j < valid; ++j) real.push_back(static_cast<size_t>(n) * r.Vl + j);
    c.grads = {{"dlogits", "logits", "losses", "", r.dloss, r.fd_samples, 1e-4, real}};
  }
  c.check = [r, valid](const Tensors&, const Tensors& after) {
    if (valid == 0) return;
    const Vec& dlogits = after.at("dlogits");
    for (int n = 0; n < r.N; ++n)
      for (int j = valid; j < r.Vl; ++j)
        ASSERT_EQ(dlogits[static_cast<size_t>(n) * r.Vl + j], 0.0f) << "padded column " << j;
    // In place (dlogits == logits) gives the same bits.
    EXPECT_TRUE(same_bits(after.at("in_place"), dlogits)) << "in-place backward differs";
  };
  return c;
}

Row cross_entropy(const XentRow& r) {
  return row(shape_name("cross_entropy",
                        {{"N", r.N}, {"V", r.vocab_size}, {"start", r.vocab_start}, {"Vl", r.Vl}}),
             r, cross_entropy_case);
}

// Two TP ranks of half the padded vocabulary each, with the all-reduces between the steps done
// on the host (MAX of row_max, SUM of sum_exp and target_logit in rank order), against the
// same logits on one rank.
struct XentSplitRow {
  int N, vocab_size, padded;
  Ints targets;
  uint32_t seed;
  float dloss;
};

Case cross_entropy_split_case(const XentSplitRow& r) {
  const int N = r.N, V = r.vocab_size, Vp = r.padded, half = Vp / 2;
  Vec logits = random_vec(static_cast<size_t>(N) * Vp, r.seed, -4.0f, 4.0f);
  for (int n = 0; n < N; ++n)
    for (int j = V; j < Vp; ++j) logits[static_cast<size_t>(n) * Vp + j] = 50.0f;
  Case c;
  c.ints["targets"] = r.targets;
  // Row maxima and target logits are copies of logits: exact everywhere.
  c.tensors = {input("logits", logits),
               written("row_max", N, {0, 0}, 0),
               written("sum_exp", N, {1e-5, 1e-6}, kTol),
               written("target_logit", N, {0, 0}, 0),
               written("losses", N, {1e-5, 1e-6}, kTol),
               written("dlogits", logits.size(), {}, kTol)};
  for (int rank = 0; rank < 2; ++rank) {
    Vec part;
    for (int n = 0; n < N; ++n)
      part.insert(part.end(), logits.begin() + n * Vp + rank * half,
                  logits.begin() + n * Vp + (rank + 1) * half);
    c.tensors.push_back(input(at("logits", rank), part));
    c.tensors.push_back(written(at("row_max", rank), N, {}, 0));
    c.tensors.push_back(written(at("sum_exp", rank), N, {}, kTol));
    c.tensors.push_back(written(at("target_logit", rank), N, {}, 0));
    c.tensors.push_back(written(at("dlogits", rank), part.size(), {}, kTol));
  }
  c.tensors.push_back(written("row_max/all", N, {}, 0));
  c.tensors.push_back(written("sum_exp/all", N, {}, kTol));
  c.tensors.push_back(written("target_logit/all", N, {}, 0));
  c.tensors.push_back(written("losses/split", N, {1e-5, 1e-6}, kTol));

  c.run = [N, V, Vp, half, dloss = r.dloss](KernelBackend& be, Buffers& t) {
    const int32_t* targets = t.ints("targets");
    be.xent_row_max(t["row_max"], t["logits"], N, Vp, 0, V);
    be.xent_partial_sums(t["sum_exp"], t["target_logit"], t["logits"], t["row_max"], targets, N, Vp,
                         0, V);
    be.xent_loss(t["losses"], t["row_max"], t["sum_exp"], t["target_logit"], N);
    be.xent_backward(t["dlogits"], t["logits"], t["row_max"], t["sum_exp"], targets, dloss, N, Vp,
                     0, V);
    Vec max_all(N, -kInf), sum_all(N, 0.0f), target_all(N, 0.0f);
    for (int k = 0; k < 2; ++k) {
      be.xent_row_max(t[at("row_max", k)], t[at("logits", k)], N, half, k * half, V);
      const Vec m = t.download(at("row_max", k));
      for (int n = 0; n < N; ++n) max_all[n] = std::max(max_all[n], m[n]);
    }
    t.upload("row_max/all", max_all);
    for (int k = 0; k < 2; ++k) {
      be.xent_partial_sums(t[at("sum_exp", k)], t[at("target_logit", k)], t[at("logits", k)],
                           t["row_max/all"], targets, N, half, k * half, V);
      const Vec s = t.download(at("sum_exp", k));
      const Vec g = t.download(at("target_logit", k));
      for (int n = 0; n < N; ++n) {
        sum_all[n] += s[n];
        target_all[n] += g[n];
      }
    }
    t.upload("sum_exp/all", sum_all);
    t.upload("target_logit/all", target_all);
    be.xent_loss(t["losses/split"], t["row_max/all"], t["sum_exp/all"], t["target_logit/all"], N);
    for (int k = 0; k < 2; ++k)
      be.xent_backward(t[at("dlogits", k)], t[at("logits", k)], t["row_max/all"], t["sum_exp/all"],
                       targets, dloss, N, half, k * half, V);
  };
  c.reference = [r](const DTensors& in, const Tensors&) {
    const XentRef x = xent_ref(in.at("logits"), r.targets, r.N, r.padded, 0, r.vocab_size);
    return DTensors{{"row_max", x.row_max},
                    {"sum_exp", x.sum_exp},
                    {"target_logit", x.target_logit},
                    {"losses", x.losses},
                    {"losses/split", x.losses}};
  };
  c.check = [N, Vp, half](const Tensors&, const Tensors& after) {
    expect_close(after.at("losses/split"), to_double(after.at("losses")), {1e-6, 1e-6},
                 "split losses");
    const Vec& whole = after.at("dlogits");
    for (int k = 0; k < 2; ++k) {
      const Vec& part = after.at(at("dlogits", k));
      for (int n = 0; n < N; ++n)
        for (int j = 0; j < half; ++j)
          EXPECT_NEAR(part[n * half + j], whole[n * Vp + k * half + j], 1e-7)
              << "row " << n << " column " << k * half + j;
    }
  };
  return c;
}

Row cross_entropy_split(const XentSplitRow& r) {
  return row(shape_name("cross_entropy_tp2", {{"N", r.N}, {"V", r.vocab_size}, {"Vp", r.padded}}),
             r, cross_entropy_split_case);
}

// A TP rank whose columns all lie beyond the real vocabulary contributes nothing: no row max
// (-inf), zero sums whether the row max is its own or the all-reduced one, zero gradient.
Case cross_entropy_padding_only_case() {
  const int N = 4, V = 13, start = 16, Vl = 8;
  Case c;
  c.ints["targets"] = {0, 5, 12, 3};
  c.tensors = {input("logits", random_vec(static_cast<size_t>(N) * Vl, 62)),
               input("finite_max", Vec(N, 1.5f)),  // as after the MAX all-reduce
               input("total_sum", Vec(N, 3.0f)),   // as after the SUM all-reduce
               written("row_max", N, {}, 0)};
  for (const char* name :
       {"sum_exp/own", "target_logit/own", "sum_exp/finite", "target_logit/finite"})
    c.tensors.push_back(written(name, N, {}, 0));
  c.tensors.push_back(written("dlogits", static_cast<size_t>(N) * Vl, {}, 0));
  c.run = [=](KernelBackend& be, Buffers& t) {
    const int32_t* targets = t.ints("targets");
    be.xent_row_max(t["row_max"], t["logits"], N, Vl, start, V);
    be.xent_partial_sums(t["sum_exp/own"], t["target_logit/own"], t["logits"], t["row_max"],
                         targets, N, Vl, start, V);
    be.xent_partial_sums(t["sum_exp/finite"], t["target_logit/finite"], t["logits"],
                         t["finite_max"], targets, N, Vl, start, V);
    be.xent_backward(t["dlogits"], t["logits"], t["finite_max"], t["total_sum"], targets, 1.0f, N,
                     Vl, start, V);
  };
  c.check = [](const Tensors&, const Tensors& after) {
    for (float m : after.at("row_max")) EXPECT_EQ(m, -kInf);
    for (const char* name :
         {"sum_exp/own", "target_logit/own", "sum_exp/finite", "target_logit/finite", "dlogits"})
      for (float x : after.at(name)) EXPECT_EQ(x, 0.0f) << name;
  };
  return c;
}

// ---- AdamW ------------------------------------------------------------------------------------

struct AdamWRow {
  size_t n;
  uint32_t param_seed;
  bool state_from_zero;              // m = v = 0 (a first step), else small random moments
  std::vector<uint32_t> grad_seeds;  // one per step
  float grad_range;
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
};

Case adamw_case(const AdamWRow& r) {
  Case c;
  c.tensors = {input("param", random_vec(r.n, r.param_seed)),
               input("m", r.state_from_zero ? Vec(r.n, 0.0f)
                                            : random_vec(r.n, r.param_seed + 2, -0.01f, 0.01f)),
               input("v", r.state_from_zero ? Vec(r.n, 0.0f)
                                            : random_vec(r.n, r.param_seed + 3, 0.0f, 1e-3f))};
  // Each step works on a copy of the state before it, so every step is checked from
  // the kernel's own fp32 state (a few fp32 ulps of |p| ~ 1; the update is ~lr).
  for (size_t k = 1; k <= r.grad_seeds.size(); ++k) {
    c.tensors.push_back(
        input(at("grad", k), random_vec(r.n, r.grad_seeds[k - 1], -r.grad_range, r.grad_range)));
    c.tensors.push_back(written(at("param", k), r.n, {0, 3e-7}, kTol));
    c.tensors.push_back(written(at("m", k), r.n, {1e-6, 1e-8}, kTol));
    c.tensors.push_back(written(at("v", k), r.n, {1e-6, 1e-8}, kTol));
  }
  const auto state = [](const char* name, size_t step) {
    return step == 0 ? std::string(name) : at(name, static_cast<long>(step));
  };
  c.run = [r, state](KernelBackend& be, Buffers& t) {
    for (size_t k = 1; k <= r.grad_seeds.size(); ++k) {
      for (const char* name : {"param", "m", "v"})
        be.copy(t[state(name, k)], t[state(name, k - 1)], r.n * sizeof(float));
      be.adamw_update(t[state("param", k)], t[state("grad", k)], t[state("m", k)], t[state("v", k)],
                      r.n, r.lr, r.beta1, r.beta2, r.eps, r.weight_decay, r.grad_scale,
                      static_cast<int>(k));
    }
  };
  // PyTorch AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  // p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), in double from the state the
  // kernel started the step from.
  c.reference = [r, state](const DTensors& in, const Tensors& after) {
    DTensors expected;
    for (size_t k = 1; k <= r.grad_seeds.size(); ++k) {
      const auto prior = [&](const char* name) {
        return k == 1 ? in.at(name) : to_double(after.at(state(name, k - 1)));
      };
      DVec p = prior("param"), m = prior("m"), v = prior("v");
      const DVec& grad = in.at(state("grad", k));
      const double bc1 = 1.0 - std::pow(double{r.beta1}, k);
      const double bc2 = 1.0 - std::pow(double{r.beta2}, k);
      for (size_t i = 0; i < r.n; ++i) {
        const double g = grad[i] * r.grad_scale;
        p[i] *= 1.0 - double{r.lr} * r.weight_decay;
        m[i] = r.beta1 * m[i] + (1.0 - r.beta1) * g;
        v[i] = r.beta2 * v[i] + (1.0 - r.beta2) * g * g;
        p[i] -= r.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + r.eps);
      }
      expected[state("param", k)] = p;
      expected[state("m", k)] = m;
      expected[state("v", k)] = v;
    }
    return expected;
  };
  return c;
}

Row adamw(const AdamWRow& r) {
  std::string name = shape_name(
      "adamw", {{"n", static_cast<long>(r.n)}, {"steps", static_cast<long>(r.grad_seeds.size())}});
  if (!r.state_from_zero) name += "_warm";
  return row(name, r, adamw_case);
}

// ---- the table ----------------------------------------------------------------------------------

constexpr size_t kEvery = 0;  // finite differences on every coordinate

const std::vector<Row>& op_table() {
  static const std::vector<Row> rows = [] {
    std::vector<Row> t;
    // Token embedding: a whole vocabulary, a TP shard, a larger shard; two shards of a
    // 100-row vocabulary with random repeated tokens and a shard no token falls in.
    for (const auto& [N, C, start, Vl] :
         {std::array{10, 12, 0, 13}, std::array{10, 12, 4, 7}, std::array{64, 40, 8, 9}})
      t.push_back(token_embedding({N, C, start, Vl, tokens_around_range(N, start, Vl), 2, kEvery}));
    for (const auto& [start, Vl] : {std::pair{0, 50}, std::pair{50, 50}, std::pair{1000, 16}})
      t.push_back(token_embedding({300, 70, start, Vl, random_ints(300, 2, 0, 100), 3, 400}));

    // Position embedding: wpe has more rows than T.
    t.push_back(position_embedding({2, 5, 12, 7, 5, true, {1e-6, 0}}));
    t.push_back(position_embedding({3, 17, 70, 20, 6, false, {1e-6, 1e-6}}));

    // LayerNorm: 600 rows are three column-sum chunks; 768 channels GPT-2's width; C = 1.
    for (const auto& [N, C] : {std::pair{10, 12}, std::pair{37, 67}, std::pair{65, 384}})
      t.push_back(layernorm({N, C, -1.5f, 2.5f, 200}));
    t.push_back(layernorm({37, 70, 2.0f, 4.0f, 200}));
    t.push_back(layernorm({600, 768, 2.0f, 4.0f, 0, false}));
    // C = 1: out is the bias and the true dinp is 0, so dinp is rounding noise times
    // rstd = 316 that no relative finite-difference tolerance fits: parity and reference only.
    t.push_back(layernorm({5, 1, 2.0f, 4.0f, 0, false}));

    // RMSNorm: small and odd widths, Llama's eps 1e-6, three column-sum chunks (N = 600) at a
    // 768 width, and C = 1 (parity and reference only: dinp is rounding noise there).
    t.push_back(rmsnorm({10, 12, 1e-5f, -1.5f, 2.5f, kEvery}));
    t.push_back(rmsnorm({37, 67, 1e-6f, -1.5f, 2.5f, 200}));
    t.push_back(rmsnorm({65, 384, 1e-5f, 2.0f, 4.0f, 200}));
    t.push_back(rmsnorm({600, 768, 1e-6f, -3.0f, 3.0f, 0, false}));
    t.push_back(rmsnorm({7, 1, 1e-5f, 2.0f, 4.0f, 0, false}));

    // Matmul: each small shape with bias and dinp, and with neither (dweight alone); an odd
    // shape, a 3-chunk dbias (N = 600), the tied LM head (no bias), the first layer (no dinp).
    for (const auto& [N, C, OC] :
         {std::array{10, 12, 7}, std::array{33, 70, 45}, std::array{130, 64, 200}}) {
      t.push_back(matmul({N, C, OC, true, true, true, 150}));
      t.push_back(matmul({N, C, OC, false, false, true, 150}));
    }
    t.push_back(matmul({67, 45, 93, true, true, false, 150}));
    t.push_back(matmul({600, 128, 384, true, true, false, 0, false, {1e-5, 6e-6}}));
    t.push_back(matmul({64, 64, 384, false, true, false, 50}));
    t.push_back(matmul({33, 20, 7, true, false, false, 150}));

    // Attention: tiny; longer than a causal tile; GPT-2's head size; odd sizes; one position.
    // The flash kernels' tiles are 64 x 64: T < 64 (one partial tile), T = 64 and 128 (whole
    // tiles), T = 130 and 200 (whole tiles and a partial one), head sizes not a multiple of
    // the 16-float vectors (20, 24, 80 = 5 vectors).
    for (const auto& [B, T, NH, hd] :
         {std::array{2, 5, 3, 4}, std::array{1, 130, 2, 16}, std::array{2, 64, 2, 64},
          std::array{1, 37, 2, 20}, std::array{1, 33, 1, 80}, std::array{1, 200, 1, 64},
          std::array{2, 128, 1, 24}})
      t.push_back(attention({B, T, NH, hd, 1.5f, 120}));
    for (const auto& [B, T, NH, hd] :
         {std::array{2, 37, 3, 24}, std::array{1, 130, 2, 64}, std::array{3, 1, 1, 8}})
      t.push_back(attention({B, T, NH, hd, 2.0f, 120}));

    // KV cache: a prompt of 7 positions, then single-token steps, then a chunk of 3.
    t.push_back(kv_cache_decode({3, 24, 50, {{0, 7}, {7, 1}, {8, 1}, {9, 3}}}));

    // RoPE on [KV, g+2, hd] rows: g = 3 with hd 6; MQA from position 3; MHA (g = 1); the
    // OpenMP split with Llama's head size; the smallest head (hd = 2).
    for (const auto& [B, T, pos0, KV, g, hd] :
         {std::array{2, 5, 0, 2, 3, 6}, std::array{1, 7, 3, 1, 4, 10},
          std::array{2, 9, 0, 3, 1, 20}, std::array{4, 33, 5, 2, 2, 64},
          std::array{1, 3, 1, 1, 1, 2}})
      t.push_back(rope({B, T, pos0, KV, g, hd, 200}));

    // Grouped-query attention: g = 3 with hd 6; MQA (KV = 1) with g = 4 and hd 20; MHA (g = 1)
    // with an odd T; g = 3 over three key blocks (T = 130); Llama's head size; one position;
    // KV = g = 1; MQA one position past two tiles.
    for (const auto& [B, T, KV, g, hd] :
         {std::array{2, 5, 2, 3, 6}, std::array{1, 37, 1, 4, 20}, std::array{2, 33, 3, 1, 24},
          std::array{1, 130, 2, 3, 16}, std::array{2, 64, 2, 2, 64}, std::array{3, 1, 2, 2, 8},
          std::array{1, 67, 1, 1, 10}, std::array{1, 129, 1, 3, 32}})
      t.push_back(attention_gqa({B, T, KV, g, hd, 1.5f, 120}));

    // GQA KV cache: a prompt, single-token steps, then a chunk, equal to the training forward.
    t.push_back(kv_cache_decode_gqa({2, 3, 6, 20, {{0, 7}, {7, 1}, {8, 1}, {9, 3}}}));
    t.push_back(kv_cache_decode_gqa({1, 4, 10, 16, {{0, 5}, {5, 1}, {6, 2}}}));  // MQA
    t.push_back(kv_cache_decode_gqa({3, 1, 24, 30, {{0, 4}, {4, 1}, {5, 1}}}));  // MHA

    t.push_back(gelu({1003, 40, 6.0f, true, true}));
    t.push_back(gelu({100003, 42, 8.0f, false, false}));  // OpenMP splits
    t.push_back(gelu({10007, 50, 6.0f, false, false}));

    // SwiGLU: special gates with every coordinate differentiated; odd sizes; OpenMP splits.
    t.push_back(swiglu({7, 13, 100, 6.0f, true, kEvery}));
    t.push_back(swiglu({33, 100, 102, 4.0f, false, 300}));
    t.push_back(swiglu({129, 257, 104, 8.0f, true, 100}));

    t.push_back(elementwise({13, 50, -0.75f}));
    t.push_back(elementwise({100003, 50, -0.75f}));
    t.push_back(elementwise({100003, 60, -0.37f}));

    // Cross-entropy on one rank: the whole vocabulary, padded to 16, a large padded vocabulary.
    for (const auto& [N, V, Vp] :
         {std::array{10, 13, 13}, std::array{10, 13, 16}, std::array{7, 990, 1024}}) {
      Ints targets = targets_pattern(N, V, 7, 2);
      targets[0] = V - 1;
      t.push_back(cross_entropy({N, V, 0, Vp, targets, 60, 4.0f, 50.0f, 1.0f / N, 300}));
    }
    // Vocabulary 170 padded to 256 in two TP shards of 128 (the second has 42 valid columns),
    // and a shard past the vocabulary with no valid column at all.
    for (const auto& [start, Vl] : {std::pair{0, 128}, std::pair{128, 128}, std::pair{192, 64}})
      t.push_back(cross_entropy(
          {29, 170, start, Vl, random_ints(29, 71, 0, 170), 70, 8.0f, 1e4f, 1.0f / 29.0f, 300}));
    {
      Ints targets = targets_pattern(10, 13, 5, 1);  // both halves own some targets
      targets[0] = 0;
      targets[1] = 12;
      t.push_back(cross_entropy_split({10, 13, 16, targets, 61, 0.25f}));
    }
    t.push_back(
        {"cross_entropy_padding_only_rank_N4_V13_start16_Vl8", cross_entropy_padding_only_case});

    for (size_t n : {size_t{37}, size_t{100003}})
      t.push_back(adamw({n, 80, true, {82, 83, 84}, 2.0f, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f}));
    t.push_back(
        adamw({100003, 90, false, {91, 91, 91}, 0.1f, 6e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f}));
    for (size_t i = 0; i < t.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (t[i].name == t[j].name) throw std::logic_error("two rows named " + t[i].name);
    return t;
  }();
  return rows;
}

// ---- backends ---------------------------------------------------------------------------------

// The built backends, then the CPU backend at each ISA level ("cpu_sse", "cpu_avx2",
// "cpu_avx512"; kernels/cpu/isa.h): "cpu" is the level this CPU dispatches to, and every level
// it supports must match the same references within the same tolerances.
const std::vector<BackendInfo>& backends() {
  static const std::vector<BackendInfo> all = [] {
    std::vector<BackendInfo> out = list_backends();
    for (const char* level : {"sse", "avx2", "avx512"}) {
      const bool here = cpu::cpu_supports(*cpu::parse_cpu_isa(level));
      out.push_back({std::string("cpu_") + level, true, here,
                     here ? "" : std::string("this CPU lacks ISA level ") + level});
    }
    return out;
  }();
  return all;
}

// The backend a name of backends() stands for (usable ones only).
KernelBackend& backend_named(const std::string& name) {
  if (name.rfind("cpu_", 0) == 0)
    return *cpu::cpu_isa_kernels(*cpu::parse_cpu_isa(name.substr(4))).backend;
  return resolve_backend(name);
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const BackendInfo& b : backends()) names.push_back(b.name);
  return names;
}

// The backend's test fixture: skips with the registry's reason where it cannot run here.
template <typename Param>
class OnBackend : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    for (const BackendInfo& b : backends()) {
      if (b.name != backend_name()) continue;
      if (!b.usable) GTEST_SKIP() << b.why_not;
      be_ = &backend_named(b.name);
      return;
    }
    FAIL() << "unknown backend " << backend_name();
  }
  virtual const std::string& backend_name() const = 0;
  // The CPU backend is checked against the double-precision references; any other against it.
  bool is_cpu() const { return backend_name().rfind("cpu", 0) == 0; }
  KernelBackend& be() { return *be_; }

 private:
  KernelBackend* be_ = nullptr;
};

// ---- the op tests -------------------------------------------------------------------------------

struct OpParam {
  std::string backend;
  size_t row;  // into op_table()
};

// gtest prints a failing test's parameter: the backend and the row, not the struct's bytes.
void PrintTo(const OpParam& p, std::ostream* os) {
  *os << p.backend << " " << op_table()[p.row].name;
}

std::vector<OpParam> op_params(bool with_gradients_only) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < op_table().size(); ++i)
    if (!with_gradients_only || op_table()[i].make().has_gradients()) rows.push_back(i);
  std::vector<OpParam> params;
  for (const std::string& backend : backend_names())
    for (size_t i : rows) params.push_back({backend, i});
  return params;
}

std::string op_param_name(const ::testing::TestParamInfo<OpParam>& info) {
  return info.param.backend + "_" + op_table()[info.param.row].name;
}

class BackendOp : public OnBackend<OpParam> {
 protected:
  void SetUp() override {
    OnBackend::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    case_ = op_table()[GetParam().row].make();
  }
  const std::string& backend_name() const override { return GetParam().backend; }
  Case case_;
};
class BackendOpGradient : public BackendOp {};

TEST_P(BackendOp, MatchesReference) {
  const Tensors before = case_.before();
  const Tensors after = run_case(be(), case_);
  if (is_cpu()) {
    if (case_.reference)  // rows without one state exact facts in `check`
      for (const auto& [name, expected] : case_.reference(to_double(before), after))
        expect_close(after.at(name), expected, case_.spec(name).ref, name);
  } else {
    const Tensors want = run_case(cpu_backend(), case_);
    for (const TensorSpec& t : case_.tensors)
      if (compared(t.role)) expect_max_rel(after.at(t.name), want.at(t.name), t.parity, t.name);
  }
  if (case_.check) case_.check(before, after);
}

// The finite differences of a row depend only on its starting values and the
// double-precision reference, so they are computed once and shared by every backend and ISA
// level (they are most of this test's time). Key: row index and gradient name.
const NumericGradient& row_numeric_gradient(size_t row, const Case& c, const GradCheck& g,
                                            const Tensors& before) {
  static std::map<std::pair<size_t, std::string>, NumericGradient> cache;
  const auto key = std::make_pair(row, g.grad);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const DTensors before_d = to_double(before);
  const Vec weights = g.dout.empty() ? Vec() : before.at(g.dout);
  const Tensors no_outputs;  // a gradient row's reference reads only its inputs
  const LossFn loss = [&](const DVec& x) {
    DTensors in = before_d;
    in[g.wrt] = x;
    const DVec out = c.reference(in, no_outputs).at(g.output);
    if (!weights.empty()) return dot(out, weights);
    double total = 0.0;
    for (double o : out) total += g.scale * o;
    return total;
  };
  return cache[key] = central_differences(loss, before.at(g.wrt), g.samples, g.coords);
}

TEST_P(BackendOpGradient, BackwardMatchesFiniteDifferences) {
  const Tensors before = case_.before();
  const Tensors after = run_case(be(), case_);
  for (const GradCheck& g : case_.grads) {
    Vec grad = after.at(g.grad);
    if (case_.spec(g.grad).role == Role::kAccumulated)
      for (size_t i = 0; i < grad.size(); ++i) grad[i] -= before.at(g.grad)[i];
    expect_gradient(g.grad, row_numeric_gradient(GetParam().row, case_, g, before), grad, g.rtol);
  }
  if (case_.gradient_check) case_.gradient_check(before, after);
}

TEST_P(BackendOp, KeepsConventions) {
  Buffers t(be(), case_);
  case_.run(be(), t);
  const Tensors first = t.download_all();
  case_.run(be(), t);
  const Tensors second = t.download_all();
  for (const TensorSpec& s : case_.tensors) {
    const Vec& x1 = first.at(s.name);
    const Vec& x2 = second.at(s.name);
    switch (s.role) {
      case Role::kInput:
      case Role::kUnused:
        EXPECT_TRUE(same_bits(x1, s.values) && same_bits(x2, s.values)) << s.name << " changed";
        break;
      case Role::kWritten:  // written, not accumulated: a second run gives the same result
        expect_close(x2, to_double(x1), s.rerun, s.name + " after a second run");
        break;
      case Role::kAccumulated: {  // a second run adds the same amount again
        DVec twice(x1.size());
        for (size_t i = 0; i < twice.size(); ++i)
          twice[i] = s.values[i] + 2.0 * (double{x1[i]} - s.values[i]);
        expect_close(x2, twice, s.rerun, s.name + " after a second run");
        break;
      }
      case Role::kScratch:
        break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, BackendOp, ::testing::ValuesIn(op_params(false)), op_param_name);
INSTANTIATE_TEST_SUITE_P(Table, BackendOpGradient, ::testing::ValuesIn(op_params(true)),
                         op_param_name);

// ---- per-backend tests that are not one op -----------------------------------------------------

class Backend : public OnBackend<std::string> {
 protected:
  const std::string& backend_name() const override { return GetParam(); }
};

TEST_P(Backend, MemoryIsAlignedZeroFilledCopiedAndOverlapSafe) {
  EXPECT_EQ(be().name(), GetParam().substr(0, GetParam().find('_')));
  EXPECT_EQ(be().host_memory(), is_cpu());
  for (size_t n : {size_t{0}, size_t{1}, size_t{13}, size_t{1000}, size_t{100003}}) {
    SCOPED_TRACE("n " + std::to_string(n));
    float* f = be().alloc_floats(n);
    int32_t* i = be().alloc_ints(n);
    ASSERT_NE(f, nullptr);  // a zero-element buffer is a valid, distinct pointer too
    ASSERT_NE(i, nullptr);
    EXPECT_NE(static_cast<void*>(f), static_cast<void*>(i));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(i) % 64, 0u);
    Vec floats(n, 1.0f);
    Ints ints(n, 1);
    be().copy_to_host(floats.data(), f, n * sizeof(float));
    be().copy_to_host(ints.data(), i, n * sizeof(int32_t));
    EXPECT_EQ(floats, Vec(n, 0.0f));
    EXPECT_EQ(ints, Ints(n, 0));
    be().free_memory(f);
    be().free_memory(i);
  }

  // Copies in and out, between buffers, and overlapping ones as memmove; fill_zero on a range.
  const size_t n = 1000;
  Vec values = random_vec(n, 1), back(n);
  float* a = be().alloc_floats(n);
  float* b = be().alloc_floats(n);
  be().copy_from_host(a, values.data(), n * sizeof(float));
  be().copy(b, a, n * sizeof(float));
  be().copy_to_host(back.data(), b, n * sizeof(float));
  EXPECT_EQ(back, values);
  be().copy(a + 10, a, 500 * sizeof(float));
  std::memmove(values.data() + 10, values.data(), 500 * sizeof(float));
  be().copy(a, a + 300, 600 * sizeof(float));
  std::memmove(values.data(), values.data() + 300, 600 * sizeof(float));
  be().copy_to_host(back.data(), a, n * sizeof(float));
  EXPECT_EQ(back, values);
  be().fill_zero(a + 100, 200);
  std::fill(values.begin() + 100, values.begin() + 300, 0.0f);
  be().synchronize();
  be().copy_to_host(back.data(), a, n * sizeof(float));
  EXPECT_EQ(back, values);
  be().free_memory(a);
  be().free_memory(b);
}

// In double and deterministic: on the CPU within 1e-12 of a double loop, elsewhere within 1e-11
// of the CPU backend (both sum in double, in different orders); the same bits on a rerun.
TEST_P(Backend, SumSquaresInDoubleAndDeterministic) {
  struct Size {
    size_t n;
    uint32_t seed;
  };
  for (const Size s : {Size{0, 70}, Size{13, 70}, Size{300007, 70}, Size{1, 80}, Size{1000, 80},
                       Size{3000017, 80}}) {
    const size_t n = s.n;
    SCOPED_TRACE("n " + std::to_string(n));
    const Vec x = random_vec(n, s.seed, -3.0f, 3.0f);
    float* p = be().alloc_floats(n);
    be().copy_from_host(p, x.data(), n * sizeof(float));
    const double got = be().sum_squares(p, n);
    if (is_cpu()) {
      // In long double: a serial double sum of 3M terms is itself off by ~1e-12 (and differs
      // with and without FMA contraction), which is the bound checked here.
      long double exact = 0.0L;
      for (float v : x) exact += static_cast<long double>(v) * v;
      const double expected = static_cast<double>(exact);
      EXPECT_NEAR(got, expected, 1e-12 * expected);
    } else {
      const double want = cpu_backend().sum_squares(x.data(), n);
      EXPECT_NEAR(got, want, 1e-11 * want);
    }
    EXPECT_EQ(be().sum_squares(p, n), got) << "not deterministic";
    be().free_memory(p);
  }
  EXPECT_EQ(be().sum_squares(nullptr, 0), 0.0);
}

TEST_P(Backend, RefusesCachePositionsPastTheEnd) {
  const int NH = 3, hd = 24, max_seq = 50;
  const size_t cache_size = static_cast<size_t>(NH) * max_seq * hd;
  float* k = be().alloc_floats(cache_size);
  float* v = be().alloc_floats(cache_size);
  float* qkv = be().alloc_floats(3 * NH * hd);
  expect_error([&] { be().kv_cache_append(k, v, qkv, max_seq, 1, NH, hd, max_seq); },
               {"kv_cache_append", "[50, 51)", "50 positions"});
  expect_error([&] { be().attention_decode(qkv, qkv, k, v, max_seq, 1, NH, hd, max_seq); },
               {"attention_decode", "[50, 51)", "50 positions"});
  expect_error([&] { be().kv_cache_append(k, v, qkv, 48, 3, NH, hd, max_seq); },
               {"kv_cache_append", "[48, 51)"});
  // A grouped-query cache of KV = 2 heads (g = 3) of the same size as above.
  const int KV = 2, g = 3, hd_gqa = 36;
  expect_error([&] { be().kv_cache_append_gqa(k, v, qkv, max_seq, 1, KV, g, hd_gqa, max_seq); },
               {"kv_cache_append_gqa", "[50, 51)", "50 positions"});
  expect_error([&] { be().attention_decode_gqa(qkv, qkv, k, v, 47, 4, KV, g, hd_gqa, max_seq); },
               {"attention_decode_gqa", "[47, 51)", "50 positions"});
  expect_error([&] { be().kv_cache_append_gqa(k, v, qkv, -1, 1, KV, g, hd_gqa, max_seq); },
               {"kv_cache_append_gqa", "[-1, 0)"});
  for (void* p : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(qkv)})
    be().free_memory(p);
}

// RoPE rotates pairs (x[i], x[i + hd/2]): an odd head size is refused, as are empty groups
// and negative positions; grouped-query attention refuses empty groups.
TEST_P(Backend, RefusesBadRopeAndGqaShapes) {
  float* x = be().alloc_floats(1000);
  expect_error([&] { be().rope_forward(x, x, x, 1, 2, 0, 2, 3, 5); }, {"rope_forward", "hd 5"});
  expect_error([&] { be().rope_backward(x, x, x, 1, 2, 0, 2, 0, 4); }, {"rope_backward", "g 0"});
  expect_error([&] { be().rope_forward(x, x, x, 1, 2, -3, 1, 1, 4); }, {"rope_forward", "-3"});
  expect_error([&] { be().attention_gqa_forward(x, x, x, 1, 2, 0, 1, 4); },
               {"attention_gqa_forward", "KV 0"});
  expect_error([&] { be().attention_gqa_backward(x, x, x, x, x, 1, 2, 1, 0, 4); },
               {"attention_gqa_backward", "g 0"});
  be().free_memory(x);
}

INSTANTIATE_TEST_SUITE_P(Each, Backend, ::testing::ValuesIn(backend_names()),
                         [](const auto& info) { return info.param; });

// ---- the whole GPT-2 step against the CPU -------------------------------------------------------
// Kept apart and small: it is the one test here that builds a model (model/model.h).

std::vector<std::string> non_cpu_backend_names() {
  std::vector<std::string> names;
  for (const std::string& name : backend_names())
    if (name.rfind("cpu", 0) != 0) names.push_back(name);
  return names;
}

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

// A GPT-2 forward, backward and AdamW step built on each backend from the same seed: loss,
// logits, every gradient, the gradient norm, the parameters after the step and the next loss.
class Gpt2Step : public Backend {};

TEST_P(Gpt2Step, MatchesCpu) {
  const ModelConfig cfg = small_gpt2();
  const int B = 3, T = 19, N = B * T;
  SelfCommunicator tp_cpu("tp"), tp_other("tp");
  auto on_cpu_stage =
      make_model_stage(cfg, ShardSpec::whole_model(cfg), cpu_backend(), tp_cpu, B, T);
  ModelStage& on_cpu = *on_cpu_stage;
  auto on_other_stage = make_model_stage(cfg, ShardSpec::whole_model(cfg), be(), tp_other, B, T);
  ModelStage& on_other = *on_other_stage;
  on_cpu.init_weights(1234);
  on_other.init_weights(1234);
  const Ints tokens = random_ints(N, 100, 0, cfg.vocab_size),
             targets = random_ints(N, 101, 0, cfg.vocab_size);

  on_cpu.zero_grads();
  on_other.zero_grads();
  const float loss_cpu = on_cpu.forward(0, tokens.data(), targets.data(), nullptr);
  const float loss_other = on_other.forward(0, tokens.data(), targets.data(), nullptr);
  EXPECT_NEAR(loss_other, loss_cpu, kTol * loss_cpu);
  const size_t n_logits = static_cast<size_t>(N) * cfg.padded_vocab();
  expect_max_rel(download(on_other, on_other.logits(0), n_logits),
                 download(on_cpu, on_cpu.logits(0), n_logits), kTol, "logits");

  on_cpu.backward(0, 1.0f, nullptr);
  on_other.backward(0, 1.0f, nullptr);
  const size_t total = on_cpu.layout().total();
  const Vec grads_other = download(on_other, on_other.grads(), total);
  for (const TensorView& v : on_cpu.layout().views())
    expect_max_rel(tensor(on_other, on_other.grads(), v), tensor(on_cpu, on_cpu.grads(), v),
                   kReductionTol, "grad " + v.name);

  // The same step again gives the same bits: no atomics in any reduction.
  on_other.zero_grads();
  EXPECT_EQ(on_other.forward(0, tokens.data(), targets.data(), nullptr), loss_other);
  on_other.backward(0, 1.0f, nullptr);
  EXPECT_TRUE(download(on_other, on_other.grads(), total) == grads_other)
      << "gradients differ between two runs";

  // One AdamW step with clipping. Where a gradient is within rounding of 0 its sign, and so
  // its first AdamW step (about lr * sign(g)), may differ between the backends: allow a few
  // such elements, bounded by the step size.
  OptimizerConfig optim;
  optim.grad_clip = 0.5f;
  AdamW adam_cpu(optim, on_cpu.layout(), cpu_backend(), 0, total),
      adam_other(optim, on_other.layout(), be(), 0, total);
  const double norm_cpu = std::sqrt(cpu_backend().sum_squares(on_cpu.grads(), total));
  const double norm_other = std::sqrt(be().sum_squares(on_other.grads(), total));
  EXPECT_NEAR(norm_other, norm_cpu, kReductionTol * norm_cpu);
  adam_cpu.update(on_cpu.params(), on_cpu.grads(), 0, clip_scale(optim, norm_cpu));
  adam_other.update(on_other.params(), on_other.grads(), 0, clip_scale(optim, norm_other));
  const Vec params_cpu = download(on_cpu, on_cpu.params(), total),
            params_other = download(on_other, on_other.params(), total);
  size_t differing = 0;
  double worst = 0.0;
  for (size_t i = 0; i < total; ++i) {
    const double diff = std::abs(static_cast<double>(params_other[i]) - params_cpu[i]);
    worst = std::max(worst, diff);
    if (diff > 1e-6 + kTol * std::abs(params_cpu[i])) ++differing;
  }
  EXPECT_LE(differing, total / 1000) << "parameters that differ after one AdamW step";
  EXPECT_LE(worst, 2.5 * optim.lr);

  // And the next forward's loss agrees.
  const float next_cpu = on_cpu.forward(0, tokens.data(), targets.data(), nullptr);
  const float next_other = on_other.forward(0, tokens.data(), targets.data(), nullptr);
  EXPECT_LT(next_cpu, loss_cpu);  // the step went downhill
  EXPECT_NEAR(next_other, next_cpu, kReductionTol * next_cpu);
}

INSTANTIATE_TEST_SUITE_P(EachButCpu, Gpt2Step, ::testing::ValuesIn(non_cpu_backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace shardlm
