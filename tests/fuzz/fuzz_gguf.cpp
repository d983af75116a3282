// libFuzzer: a GGUF v3 file (convert/gguf.h): header, metadata values, tensor infos, alignment
// and the data section. A file the reader accepts must hold every tensor's data inside the file
// and then read every tensor (Q8_0 dequantized).
#include <cstdlib>

#include "convert/gguf.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shardlm::fuzz::write_input("model.gguf", data, size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::GgufReader reader(path);
    try {
      for (const shardlm::GgufTensorInfo& t : reader.tensors()) {
        // its data lies inside the file (an offset that wraps around would read the header)
        const uint64_t bytes = shardlm::gguf_bytes(t.type, t.numel());
        if (t.offset > size || bytes > size - t.offset) std::abort();
        if (reader.read(t).size() != static_cast<size_t>(t.numel())) std::abort();
      }
    } catch (const shardlm::Error&) {
      std::abort();  // an accepted file whose tensor cannot be read
    }
  });
  return 0;
}
