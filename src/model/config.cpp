#include "model/config.h"

#include <map>
#include <sstream>

#include "core/error.h"

namespace shardlm {

int ModelConfig::padded_vocab() const {
  const int m = vocab_pad_multiple > 0 ? vocab_pad_multiple : 1;
  return (vocab_size + m - 1) / m * m;
}

void ModelConfig::validate() const {
  auto positive = [](const char* field, int v) {
    if (v <= 0) fail(std::string("invalid model config: ") + field + " must be > 0, got " + std::to_string(v));
  };
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_embd", n_embd);
  positive("vocab_size", vocab_size);
  positive("max_seq_len", max_seq_len);
  positive("vocab_pad_multiple", vocab_pad_multiple);
  if (n_embd % n_head != 0)
    fail("invalid model config: n_embd (" + std::to_string(n_embd) + ") must be divisible by n_head (" +
         std::to_string(n_head) + ")");
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = n_embd, V = vocab_size, T = max_seq_len;
  const int64_t per_layer = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
  return V * C + T * C + n_layer * per_layer + 2 * C;
}

std::string ModelConfig::to_string() const {
  std::ostringstream os;
  os << "family=gpt2\n"
     << "n_layer=" << n_layer << "\n"
     << "n_head=" << n_head << "\n"
     << "n_embd=" << n_embd << "\n"
     << "vocab_size=" << vocab_size << "\n"
     << "max_seq_len=" << max_seq_len << "\n"
     << "vocab_pad_multiple=" << vocab_pad_multiple << "\n";
  return os.str();
}

namespace {
const std::map<std::string, ModelConfig>& presets() {
  static const std::map<std::string, ModelConfig> table = [] {
    std::map<std::string, ModelConfig> t;
    auto make = [](int L, int H, int C, int V, int T) {
      ModelConfig c;
      c.n_layer = L;
      c.n_head = H;
      c.n_embd = C;
      c.vocab_size = V;
      c.max_seq_len = T;
      return c;
    };
    t["tiny"] = make(2, 4, 128, 8192, 256);  // seconds per step on 2 cores
    t["mini"] = make(6, 6, 384, 8192, 256);  // the demo / benchmark model
    t["gpt2"] = make(12, 12, 768, 50257, 1024);
    t["gpt2-medium"] = make(24, 16, 1024, 50257, 1024);
    t["gpt2-large"] = make(36, 20, 1280, 50257, 1024);
    t["gpt2-xl"] = make(48, 25, 1600, 50257, 1024);
    return t;
  }();
  return table;
}
}  // namespace

std::vector<std::string> model_preset_names() {
  return {"tiny", "mini", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"};
}

ModelConfig model_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown model preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

}  // namespace shardlm
