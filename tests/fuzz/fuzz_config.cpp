// libFuzzer: a `shardlm train --config` file (train/run_flags.h): the flag-name = value lines
// and the [model] record (model/config.h).
#include <string>

#include "fuzz_support.h"
#include "train/run_flags.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  shardlm::fuzz::accept_or_refuse([&] { (void)shardlm::parse_run_config_text(text, "fuzz.ini"); });
  return 0;
}
