#include "kernels/registry.h"

#include "core/error.h"
#ifdef SHARDLM_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace shardlm {

std::vector<BackendInfo> list_backends() {
  std::vector<BackendInfo> out;
  out.push_back({"cpu", true, true, ""});
#ifdef SHARDLM_HAVE_CUDA
  const bool gpu = cuda_device_available();
  out.push_back({"cuda", true, gpu, gpu ? "" : "no usable CUDA device on this machine"});
#else
  out.push_back({"cuda", false, false,
                 "this shardlm was built without CUDA (configure with -DSHARDLM_CUDA=ON where nvcc "
                 "is installed)"});
#endif
  return out;
}

std::vector<std::string> backend_names() {
  return {"cpu", "cuda"};
}

KernelBackend& resolve_backend(const std::string& device) {
  std::string known;
  for (const BackendInfo& b : list_backends()) {
    known += (known.empty() ? "'" : ", '") + b.name + "'";
    if (b.name != device) continue;
    if (!b.usable) fail("--device " + device + ": " + b.why_not);
    if (device == "cpu") return cpu_backend();
#ifdef SHARDLM_HAVE_CUDA
    if (device == "cuda") return cuda_backend();
#endif
  }
  fail("--device must be one of " + known + ", got '" + device + "'");
}

}  // namespace shardlm
