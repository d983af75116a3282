#include "train/run_config.h"

#include <charconv>
#include <cstring>
#include <map>
#include <sstream>

#include "core/error.h"
#include "train/run_flags.h"

namespace shardlm {

namespace {

// The shortest decimal that reads back as exactly `x` (so a re-read config runs bit for bit
// the same: 3e-3f prints as 0.003, not as 0.0030000000026077032).
template <typename Float>
std::string exact(Float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

std::string int_list(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

}  // namespace

std::string RunConfig::to_ini() const {
  using std::to_string;
  const std::map<std::string, std::string> value = {
      {"model", model_preset},
      {"n-layer", to_string(model.n_layer)},
      {"n-head", to_string(model.n_head)},
      {"n-embd", to_string(model.n_embd)},
      {"vocab-size", to_string(model.vocab_size)},
      {"max-seq-len", to_string(model.max_seq_len)},
      {"data", data},
      {"seq-len", to_string(seq_len)},
      {"micro-batch", to_string(micro_batch)},
      {"global-batch", to_string(global_batch)},
      {"steps", to_string(steps)},
      {"seed", to_string(seed)},
      {"lr", exact(optim.lr)},
      {"min-lr", exact(optim.min_lr)},
      {"warmup", to_string(optim.warmup_steps)},
      {"weight-decay", exact(optim.weight_decay)},
      {"grad-clip", exact(optim.grad_clip)},
      {"beta1", exact(optim.beta1)},
      {"beta2", exact(optim.beta2)},
      {"eps", exact(optim.eps)},
      {"on-nan", skip_non_finite ? "skip" : "error"},
      {"tp", to_string(tp)},
      {"pp", to_string(pp)},
      {"pp-layers", int_list(pp_layers)},
      {"zero", to_string(zero)},
      {"recompute", recompute_name(recompute)},
      {"device", device},
      {"save-every", to_string(save_every)},
      {"keep-last", to_string(keep_last)},
      {"keep-every", to_string(keep_every)},
      {"eval-every", to_string(eval_every)},
      {"eval-steps", to_string(eval_steps)},
      {"log-every", to_string(log_every)},
      {"peak-tflops", exact(peak_tflops)},
  };
  std::ostringstream os;
  os << "# The effective config of a shardlm train run: `flag-name = value`, as --config reads it\n"
        "# (`shardlm train --config THIS_FILE --out DIR` runs the same run; flags override it).\n";
  const char* group = nullptr;
  size_t written = 0;
  for (const RunFlagSpec& spec : run_flag_specs()) {
    if (!spec.recorded) continue;
    const auto it = value.find(spec.name);
    SHARDLM_CHECK(it != value.end(),
                  std::string("RunConfig::to_ini has no value for ") + spec.name);
    if (group == nullptr || std::strcmp(group, spec.group) != 0) os << "\n# " << spec.group << "\n";
    group = spec.group;
    os << spec.name << " =" << (it->second.empty() ? "" : " ") << it->second << "\n";
    ++written;
  }
  SHARDLM_CHECK(written == value.size(), "RunConfig::to_ini writes a setting the table lacks");
  os << "\n# The model these settings give, as checkpoints record it. A config file may carry\n"
        "# this section; the settings must then give this model.\n"
     << model_config_to_ini(model);
  return os.str();
}

}  // namespace shardlm
