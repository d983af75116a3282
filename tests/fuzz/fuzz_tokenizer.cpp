// libFuzzer: a SentencePiece tokenizer model (data/tokenizer.h) as `shardlm generate` and
// checkpoints load it from bytes; a model that loads must also encode and decode.
#include <string>

#include "data/tokenizer.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::Tokenizer tok = shardlm::Tokenizer::from_serialized(std::move(bytes), "fuzz");
    (void)tok.decode(tok.encode("To be, or not to be:\n  that is the question 123"));
  });
  return 0;
}
