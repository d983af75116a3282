// libFuzzer: a GGUF v3 file (convert/gguf.h): header, metadata values, tensor infos, alignment
// and the data section. A file the reader accepts must then read every tensor (Q8_0
// dequantized): it promised the tensors' data fits the file.
#include <cstdlib>

#include "convert/gguf.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shardlm::fuzz::write_input("model.gguf", data, size);
  shardlm::fuzz::accept_or_refuse([&] {
    const shardlm::GgufReader reader(path);
    try {
      for (const shardlm::GgufTensorInfo& t : reader.tensors()) (void)reader.read(t);
    } catch (const shardlm::Error&) {
      std::abort();  // an accepted file whose tensor cannot be read
    }
  });
  return 0;
}
