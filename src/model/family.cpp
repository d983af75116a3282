#include "model/family.h"

#include "core/error.h"
#include "model/gpt2/family.h"
#include "model/llama/family.h"

namespace shardlm {

const std::vector<const ModelFamily*>& model_families() {
  static const std::vector<const ModelFamily*> families = {&gpt2_family(), &llama_family()};
  return families;
}

const ModelFamily& model_family(const std::string& name) {
  std::string known;
  for (const ModelFamily* f : model_families()) {
    if (f->name() == name) return *f;
    known += (known.empty() ? "" : ", ") + f->name();
  }
  fail("unknown model family '" + name + "' (known: " + known + ")");
}

}  // namespace shardlm
