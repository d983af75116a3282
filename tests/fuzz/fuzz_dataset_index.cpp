// libFuzzer: a dataset's index.txt (data/dataset_index.h): its checksum line and every field.
#include "data/dataset_index.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shardlm::fuzz::write_input(shardlm::kDatasetIndexFile, data, size);
  shardlm::fuzz::accept_or_refuse(
      [&] { (void)shardlm::read_dataset_index(shardlm::fuzz::scratch_dir().string()); });
  return 0;
}
