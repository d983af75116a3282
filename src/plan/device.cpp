#include "plan/device.h"

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "kernels/cpu/peak_flops.h"
#include "plan/host_memory.h"

namespace shardlm {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kGB = 1e9;

// The vendors' figures (docs/planner.md): dense bf16 tensor-core peak, HBM capacity and
// bandwidth, NVLink per direction per GPU, and one 400 Gb/s (A100: 200 Gb/s) NIC per GPU.
// Efficiency: the fraction of peak that well-tuned transformer GEMMs sustain (Megatron-LM's
// reports), before the bubble and communication the planner adds itself.
DeviceSpec gpu(const char* name, double mem, double tflops, double hbm, double nvlink, double nic) {
  return {name, mem, tflops * 1e12, hbm, nvlink, nic, 0.60, false};
}

// This machine: the host memory shardlm may still use, the reference core's fp32 FMA peak on
// every core (the MFU yardstick, kernels/cpu/peak_flops.h), and the rates measured for
// docs/planner.md: MPI shared-memory transfers and the kernels' share of peak.
DeviceSpec this_cpu() {
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  return {"cpu",
          static_cast<double>(read_host_memory().usable()),
          cores * cpu::kReferenceCorePeakFlops,
          8 * kGB,
          2 * kGB,
          1.25 * kGB,  // 10 Gb/s Ethernet between nodes
          0.30,
          true};
}

}  // namespace

std::vector<std::string> device_names() {
  return {"a100", "h100", "h200", "b200", "cpu"};
}

DeviceSpec device_spec(const std::string& name) {
  if (name == "a100") return gpu("a100", 80 * kGiB, 312, 2.04e12, 300 * kGB, 25 * kGB);
  if (name == "h100") return gpu("h100", 80 * kGiB, 989, 3.35e12, 450 * kGB, 50 * kGB);
  if (name == "h200") return gpu("h200", 141 * kGB, 989, 4.8e12, 450 * kGB, 50 * kGB);
  if (name == "b200") return gpu("b200", 180 * kGB, 2250, 8.0e12, 900 * kGB, 50 * kGB);
  if (name == "cpu") return this_cpu();
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError("--device: unknown device '" + name + "' (known: " + known + ")");
}

}  // namespace shardlm
