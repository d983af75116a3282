#include "kernels/host_staging.h"

#include "core/error.h"

namespace shardlm {

HostStaged::HostStaged(KernelBackend& be, float* p, size_t n, Mode mode)
    : be_(be), mode_(mode), device_(p), n_(n), host_(p) {
  if (be.host_memory()) return;
  copy_.resize(n);
  host_ = copy_.data();
  if (mode != Mode::Write) be.copy_to_host(host_, p, n * sizeof(float));
}

HostStaged::HostStaged(KernelBackend& be, const float* p, size_t n)
    : HostStaged(be, const_cast<float*>(p), n, Mode::Read) {}

void HostStaged::flush() {
  SHARDLM_CHECK(mode_ != Mode::Read, "flush of a read-only host view");
  if (host_ != device_) be_.copy_from_host(device_, host_, n_ * sizeof(float));
}

}  // namespace shardlm
