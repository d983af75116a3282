// libFuzzer: a token shard file (data/token_shard.h): header, size, checksums, token ids.
#include "data/token_shard.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shardlm::fuzz::write_input("train_00000.bin", data, size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::TokenShardReader reader(path.string());
    (void)reader.header();
  });
  return 0;
}
