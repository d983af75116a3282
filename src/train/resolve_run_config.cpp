#include "train/resolve_run_config.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <type_traits>

#include "core/error.h"
#include "core/parse.h"
#include "kernels/registry.h"

namespace shardlm {

namespace {

// Typed access to the settings: the given value, else the table's default, parsed; every
// message names the flag and the value.
class Settings {
 public:
  explicit Settings(const RunFlags& flags) : flags_(flags) {}

  bool given(const char* name) const { return flags_.values.count(spec(name).name) != 0; }
  std::string text(const char* name) const {
    const auto it = flags_.values.find(spec(name).name);
    return it != flags_.values.end() ? it->second : spec(name).default_value;
  }
  // The value as a T (core/parse.h: the whole text, one number in range).
  template <typename T>
  T number(const char* name) const {
    const std::string what = "--" + std::string(name), s = text(name);
    if constexpr (std::is_same_v<T, int>) {
      return parse_int(what, s);
    } else if constexpr (std::is_same_v<T, int64_t>) {
      return parse_int64(what, s);
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      return parse_uint64(what, s);
    } else if constexpr (std::is_same_v<T, float>) {
      return parse_float(what, s);
    } else {
      static_assert(std::is_same_v<T, double>);
      return parse_double(what, s);
    }
  }
  // number<T>, refused unless it is at least `low`.
  template <typename T>
  T at_least(const char* name, T low) const {
    const T value = number<T>(name);
    if (value < low) must(name, ">= " + show(low));
    return value;
  }
  // Empty: none.
  std::vector<int> int_list(const char* name) const {
    const std::string s = text(name);
    return s.empty() ? std::vector<int>{} : parse_int_list("--" + std::string(name), s);
  }
  [[noreturn]] void refuse(const char* name, const std::string& why) const {
    throw UsageError("--" + std::string(name) + ": " + why);
  }
  // "--steps must be >= 1, got '0'", worded like core/parse.h's refusals.
  [[noreturn]] void must(const char* name, const std::string& rule) const {
    throw UsageError("--" + std::string(name) + " must be " + rule + ", got '" + text(name) + "'");
  }

 private:
  static const RunFlagSpec& spec(const char* name) {
    const RunFlagSpec* s = find_run_flag(name);
    SHARDLM_CHECK(s != nullptr, std::string("resolve_run_config reads an unknown setting ") + name);
    return *s;
  }
  template <typename T>
  static std::string show(T v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }
  const RunFlags& flags_;
};

// The preset (or a file's [model] section), its overrides, and the vocabulary (the
// tokenizer's unless given).
ModelConfig resolve_model(const Settings& s, const RunFacts& facts, bool synthetic) {
  ModelConfig m;
  try {
    m = model_preset_or_file(s.text("model"));
  } catch (const Error& e) {
    throw UsageError(std::string("--model: ") + e.what() +
                     " (or give a file with a [model] section)");
  }
  if (s.given("n-layer")) m.n_layer = s.number<int>("n-layer");
  if (s.given("n-head")) m.n_head = s.number<int>("n-head");
  if (s.given("n-embd")) m.n_embd = s.number<int>("n-embd");
  if (s.given("max-seq-len")) m.max_seq_len = s.number<int>("max-seq-len");
  if (s.given("vocab-size")) {
    m.vocab_size = s.number<int>("vocab-size");
  } else if (!synthetic) {
    SHARDLM_CHECK(facts.tokenizer_vocab.has_value(),
                  "resolve_run_config: --data " + s.text("data") + " without its tokenizer's size");
    m.vocab_size = *facts.tokenizer_vocab;
  }
  if (facts.tokenizer_vocab && m.vocab_size < *facts.tokenizer_vocab)
    s.refuse("vocab-size", "the model's vocabulary " + std::to_string(m.vocab_size) +
                               " is smaller than the tokenizer's " +
                               std::to_string(*facts.tokenizer_vocab) + " (" +
                               facts.tokenizer_path + ")");
  if (synthetic && m.vocab_size <= 0)
    s.refuse("vocab-size",
             "--data synthetic needs a vocabulary size (a --model preset or "
             "--vocab-size), got " +
                 std::to_string(m.vocab_size));
  m.validate();
  return m;
}

// --model as the effective config records it: a model file by its absolute path, so that the
// run's run_config.ini runs again from any directory.
std::string model_setting(const std::string& text) {
  if (!std::filesystem::is_regular_file(text)) return text;
  return std::filesystem::absolute(text).lexically_normal().string();
}

void check_recorded_model(const RunFlags& flags, const ModelConfig& model) {
  if (!flags.recorded_model || *flags.recorded_model == model) return;
  throw UsageError(flags.recorded_in +
                   ": its [model] section records another model than the settings give (" +
                   model_config_diff(*flags.recorded_model, model) +
                   "); to train a different model, delete that section (it is a record of the "
                   "model a run resolved to)");
}

// seq-len, micro-batch, global-batch (or global-batch-tokens), steps, seed.
void resolve_batch(const Settings& s, int dp, RunConfig& c) {
  c.seq_len = s.at_least<int>("seq-len", 0);
  if (c.seq_len == 0) c.seq_len = c.model.max_seq_len;
  if (c.seq_len > c.model.max_seq_len)
    s.refuse("seq-len", "the sequence length " + std::to_string(c.seq_len) +
                            " must be in [1, max_seq_len " + std::to_string(c.model.max_seq_len) +
                            "] (the model's position table, --max-seq-len)");
  c.micro_batch = s.at_least<int>("micro-batch", 1);
  if (s.given("global-batch") && s.given("global-batch-tokens"))
    throw UsageError("--global-batch and --global-batch-tokens contradict each other: give one");
  const char* batch_flag = "global-batch";
  c.global_batch = s.at_least<int64_t>("global-batch", 0);
  if (const int64_t tokens = s.at_least<int64_t>("global-batch-tokens", 0); tokens > 0) {
    if (tokens % c.seq_len != 0)
      s.refuse("global-batch-tokens", std::to_string(tokens) +
                                          " is not a multiple of the sequence length " +
                                          std::to_string(c.seq_len));
    c.global_batch = tokens / c.seq_len;
    batch_flag = "global-batch-tokens";
  }
  const int64_t per_round = static_cast<int64_t>(c.micro_batch) * dp;
  if (c.global_batch == 0) c.global_batch = per_round;
  if (c.global_batch % per_round != 0)
    throw UsageError(
        "--" + std::string(batch_flag) + " " + s.text(batch_flag) + ": " +
        std::to_string(c.global_batch) +
        " sequences is not a multiple of micro-batch x dp = " + std::to_string(c.micro_batch) +
        " x " + std::to_string(dp) + " = " + std::to_string(per_round));
  c.steps = s.at_least<int>("steps", 1);
  c.seed = s.number<uint64_t>("seed");
}

void resolve_optimizer(const Settings& s, RunConfig& c) {
  OptimizerConfig& o = c.optim;
  o.lr = s.number<float>("lr");
  o.min_lr = s.number<float>("min-lr");
  if (o.lr <= 0 || o.min_lr < 0 || o.min_lr > o.lr)
    throw UsageError("--lr " + s.text("lr") + " and --min-lr " + s.text("min-lr") +
                     ": the learning rates must satisfy 0 <= min-lr <= lr and lr > 0");
  o.warmup_steps = s.at_least<int>("warmup", 0);
  o.total_steps = c.steps;
  o.weight_decay = s.at_least<float>("weight-decay", 0.0f);
  o.grad_clip = s.at_least<float>("grad-clip", 0.0f);
  const auto beta = [&](const char* name) {
    const float b = s.at_least<float>(name, 0.0f);
    if (b >= 1.0f) s.must(name, "in [0, 1)");
    return b;
  };
  o.beta1 = beta("beta1");
  o.beta2 = beta("beta2");
  o.eps = s.number<float>("eps");
  if (o.eps <= 0) s.must("eps", "> 0");
  const std::string on_nan = s.text("on-nan");
  if (on_nan != "error" && on_nan != "skip") s.must("on-nan", "'error' or 'skip'");
  c.skip_non_finite = on_nan == "skip";
}

MeshShape resolve_layout(const Settings& s, int world_size, RunConfig& c) {
  c.tp = s.number<int>("tp");
  c.pp = s.number<int>("pp");
  const MeshShape shape = make_mesh_shape(world_size, c.tp, c.pp);  // names tp, pp, world size
  c.pp_layers = s.int_list("pp-layers");
  c.zero = s.number<int>("zero");
  if (c.zero < 0 || c.zero > 3) s.must("zero", "0, 1, 2 or 3");
  try {
    c.recompute = parse_recompute(s.text("recompute"));
  } catch (const Error&) {
    s.must("recompute", "none, selective or full");
  }
  c.device = s.text("device");
  const std::vector<std::string> known = backend_names();
  if (std::find(known.begin(), known.end(), c.device) == known.end()) {
    std::string list;
    for (const std::string& name : known) list += (list.empty() ? "'" : ", '") + name + "'";
    s.must("device", "one of " + list);
  }
  return shape;
}

// --trace-steps A:B, 1 <= A <= B.
void resolve_trace_steps(const Settings& s, RunConfig& c) {
  const std::string text = s.text("trace-steps");
  if (text.empty()) return;
  const size_t colon = text.find(':');
  if (colon == std::string::npos) s.must("trace-steps", "A:B (first and last step, e.g. 3:4)");
  c.trace_first = parse_int("--trace-steps A", text.substr(0, colon));
  c.trace_last = parse_int("--trace-steps B", text.substr(colon + 1));
  if (c.trace_first < 1 || c.trace_last < c.trace_first)
    s.must("trace-steps", "A:B with 1 <= A <= B (steps count from 1)");
}

void resolve_run_directory(const Settings& s, RunConfig& c) {
  c.out = s.text("out");
  if (c.out.empty()) throw UsageError("--out (the run directory) is required");
  c.metrics = s.given("metrics") ? s.text("metrics")
                                 : (std::filesystem::path(c.out) / "metrics.jsonl").string();
  c.resume = s.text("resume");
  c.init_from = s.text("init-from");
  if (c.resume.empty()) s.must("resume", "'auto', 'none' or a checkpoint path");
  c.exit_after_minutes = s.at_least<double>("exit-after-minutes", 0.0);
  const std::string memory_check = s.text("memory-check");
  if (memory_check != "on" && memory_check != "off") s.must("memory-check", "'on' or 'off'");
  c.memory_check = memory_check == "on";
  c.threads = s.at_least<int>("threads", 0);
  c.save_every = s.at_least<int>("save-every", 0);
  c.keep_last = s.at_least<int>("keep-last", 0);
  c.keep_every = s.at_least<int>("keep-every", 0);
  const std::string async_save = s.text("async-save");
  if (async_save != "on" && async_save != "off") s.must("async-save", "'on' or 'off'");
  c.async_save = async_save == "on";
  c.eval_every = s.at_least<int>("eval-every", 0);
  c.eval_steps = s.at_least<int>("eval-steps", 1);
  c.log_every = s.at_least<int>("log-every", 1);
  c.peak_tflops = s.at_least<double>("peak-tflops", 0.0);
  const std::string tensorboard = s.text("tensorboard");
  if (tensorboard != "on" && tensorboard != "off") s.must("tensorboard", "'on' or 'off'");
  c.tensorboard = tensorboard == "on";
  resolve_trace_steps(s, c);
}

TrainSettings train_settings(const RunConfig& c, const MeshShape& shape) {
  TrainSettings st;
  st.model = c.model;
  st.micro_batch = c.micro_batch;
  st.seq_len = c.seq_len;
  st.micro_batches =
      static_cast<int>(c.global_batch / (static_cast<int64_t>(c.micro_batch) * shape.dp));
  st.optim = c.optim;
  st.seed = c.seed;
  st.zero_stage = c.zero;
  st.recompute = c.recompute;
  st.pipeline_layers = c.pp_layers;
  return st;
}

}  // namespace

std::string data_setting(const RunFlags& flags) {
  return Settings(flags).text("data");
}

ResolvedRun resolve_run_config(const RunFlags& flags, const RunFacts& facts) {
  try {
    const Settings s(flags);
    ResolvedRun r;
    RunConfig& c = r.config;
    c.model_preset = model_setting(s.text("model"));
    c.data = s.text("data");
    c.model = resolve_model(s, facts, c.data == kSyntheticData);
    check_recorded_model(flags, c.model);
    r.mesh = resolve_layout(s, facts.world_size, c);
    resolve_batch(s, r.mesh.dp, c);
    resolve_optimizer(s, c);
    resolve_run_directory(s, c);
    r.train = train_settings(c, r.mesh);
    validate_layout(r.train, r.mesh);
    return r;
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    // ModelConfig::validate, make_mesh_shape and validate_layout throw plain Errors; here they
    // refuse settings, which is a usage error whoever words it.
    throw UsageError(e.what());
  }
}

}  // namespace shardlm
