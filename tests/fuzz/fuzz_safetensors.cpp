// libFuzzer: a safetensors file (convert/safetensors.h): header length, JSON header, dtypes,
// shapes and data_offsets. A file the reader accepts must hold every tensor's bytes inside its
// data section and then read every tensor (in two pieces, as the importer reads row ranges).
#include <cstdlib>
#include <cstring>
#include <vector>

#include "convert/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shardlm::fuzz::write_input("model.safetensors", data, size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::SafetensorsReader reader(path);
    uint64_t header = 0;  // accepted: the 8-byte length is there and fits
    std::memcpy(&header, data, 8);
    try {
      for (const shardlm::SafetensorsEntry& e : reader.entries()) {
        // its bytes lie inside the data section (an offset that wraps around would read the
        // header as data)
        if (e.end > size - 8 - header) std::abort();
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
