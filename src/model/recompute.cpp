#include "model/recompute.h"

#include "core/error.h"

namespace shardlm {

Recompute parse_recompute(const std::string& text) {
  if (text == "none") return Recompute::None;
  if (text == "selective") return Recompute::Selective;
  if (text == "full") return Recompute::Full;
  fail("recompute mode must be none, selective or full, got '" + text + "'");
}

const char* recompute_name(Recompute mode) {
  switch (mode) {
    case Recompute::None:
      return "none";
    case Recompute::Selective:
      return "selective";
    case Recompute::Full:
      return "full";
  }
  return "?";
}

bool keeps(Recompute mode, ActivationRole role) {
  switch (mode) {
    case Recompute::None:
      return true;
    case Recompute::Selective:
      return role == ActivationRole::Internal;
    case Recompute::Full:
      return false;
  }
  return true;
}

void recompute_block(Recompute mode, const std::function<void()>& full_forward,
                     const std::function<void()>& selective) {
  if (mode == Recompute::Full) full_forward();
  if (mode == Recompute::Selective) selective();
}

float* BlockActivations::get(const std::string& name, ActivationRole role, size_t n) {
  if (keeps(mode_, role)) {
    kept_bytes_ += n * sizeof(float);
    return alloc_(n);
  }
  auto it = shared_.find(name);
  if (it == shared_.end()) {
    shared_bytes_ += n * sizeof(float);
    it = shared_.emplace(name, std::make_pair(alloc_(n), n)).first;
  }
  SHARDLM_CHECK(it->second.second == n, "shared activation '" + name + "' requested with " +
                                            std::to_string(n) + " elements, has " +
                                            std::to_string(it->second.second));
  return it->second.first;
}

}  // namespace shardlm
