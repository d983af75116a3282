// libFuzzer: a Hugging Face tokenizer.json as `data prepare --tokenizer`, `convert --from hf` and
// checkpoints read it (data/tokenizer_json.h, data/bpe_model.h); one that loads must also
// encode, decode and find block cuts.
#include <string>

#include "data/bpe_model.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  shardlm::fuzz::accept_or_refuse([&] {
    const auto tok = shardlm::make_byte_level_bpe_model(bytes, "fuzz");
    const std::string text =
        "To be, or not to be:\n  that's the question 123 \xC3\xA9\xF0\x9F\x8E\x89";
    const auto ids = tok->encode(text);
    (void)tok->decode(ids);
    (void)tok->independent_cut(text, text.size() - 1);
  });
  return 0;
}
