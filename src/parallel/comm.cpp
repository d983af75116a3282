#include "parallel/comm.h"

#include "core/error.h"

namespace shardlm {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
    case DType::U8:
      return 1;
  }
  fail("dtype_size: unknown DType value " + std::to_string(static_cast<int>(dtype)));
}

}  // namespace shardlm
