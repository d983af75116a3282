#include "kernels/registry.h"

#include <cstdlib>

#include "core/error.h"
#include "core/parse.h"
#ifdef SHARDLM_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace shardlm {

namespace {
constexpr const char* kNotBuiltWithCuda =
    "this shardlm was built without CUDA (configure with -DSHARDLM_CUDA=ON where nvcc is "
    "installed)";

// The fake count's text, or null when unset.
const char* fake_cuda_device_count() {
  return std::getenv(kFakeCudaDeviceCountVar);
}
}  // namespace

std::vector<BackendInfo> list_backends() {
  std::vector<BackendInfo> out;
  out.push_back({"cpu", true, true, ""});
#ifdef SHARDLM_HAVE_CUDA
  const bool gpu = cuda_device_available();
  out.push_back({"cuda", true, gpu, gpu ? "" : "no usable CUDA device on this machine"});
#else
  out.push_back({"cuda", false, false, kNotBuiltWithCuda});
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

int cuda_device_count() {
  if (const char* fake = fake_cuda_device_count()) {
    const int count = parse_int(kFakeCudaDeviceCountVar, fake);
    if (count < 0) fail(std::string(kFakeCudaDeviceCountVar) + " must be >= 0, got " + fake);
    return count;
  }
#ifdef SHARDLM_HAVE_CUDA
  return cuda_runtime_device_count();
#else
  fail(std::string("--device cuda: ") + kNotBuiltWithCuda + " (" + kFakeCudaDeviceCountVar +
       " fakes a device count for tests)");
#endif
}

void select_cuda_device([[maybe_unused]] int device) {
#ifdef SHARDLM_HAVE_CUDA
  if (fake_cuda_device_count() == nullptr) use_cuda_device(device);
#endif
}

}  // namespace shardlm
