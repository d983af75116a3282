#include "parallel/consistency.h"

#include "core/hash.h"

#include <vector>

#include "core/error.h"

namespace shardlm {

void check_same_on_all_ranks(Communicator& world, const std::string& what,
                             const std::string& text) {
  const uint64_t mine = fnv1a64(text);
  std::vector<uint64_t> hashes(static_cast<size_t>(world.size()));
  world.all_gather(&mine, hashes.data(), 1, DType::I64);  // same bits, signedness irrelevant

  std::vector<int> differing;
  for (int r = 1; r < world.size(); ++r)
    if (hashes[r] != hashes[0]) differing.push_back(r);
  if (differing.empty()) return;

  std::string list;
  for (const int r : differing) list += (list.empty() ? "" : ",") + std::to_string(r);
  fail(what + " differs between ranks: " + (differing.size() == 1 ? "rank " : "ranks ") + list +
       (differing.size() == 1 ? " differs" : " differ") + " from rank 0");
}

}  // namespace shardlm
