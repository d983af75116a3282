// libFuzzer: a safetensors file (convert/safetensors.h): header length, JSON header, dtypes,
// shapes and data_offsets. A file the reader accepts must then read every tensor (in two
// pieces, as the importer reads row ranges): it promised the ranges lie inside the file.
#include <cstdlib>
#include <vector>

#include "convert/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shardlm::fuzz::write_input("model.safetensors", data, size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::SafetensorsReader reader(path);
    try {
      for (const shardlm::SafetensorsEntry& e : reader.entries()) {
        std::vector<float> values(static_cast<size_t>(e.numel()));  // [numel]
        const int64_t half = e.numel() / 2;
        reader.read(e, 0, half, values.data());
        reader.read(e, half, e.numel() - half, values.data() + half);
      }
    } catch (const shardlm::Error&) {
      std::abort();  // an accepted file whose tensor cannot be read
    }
  });
  return 0;
}
