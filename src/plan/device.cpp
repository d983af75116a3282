#include "plan/device.h"

#include "core/error.h"
#include "kernels/cpu/peak_flops.h"
#include "kernels/cpu/threads.h"
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
  DeviceSpec d{name, mem, tflops * 1e12, hbm, nvlink, nic, 0.60, false};
  d.attention_efficiency = d.efficiency;
  d.rates_source = "data-sheet peak, Megatron-LM's reported efficiency";
  return d;
}

// This machine: the host memory shardlm may still use, its core's fp32 FMA peak measured now
// on every core (the MFU yardstick, kernels/cpu/peak_flops.h), and the rates measured on one
// thread of the reference machine for docs/planner.md (traces of 4-layer GPT-2 with C 128,
// 256, 512 and Llama with C 128; seq-len 128): dense matmuls at 76-79% of the core's peak,
// the attention kernels at 20-27%, the element-wise kernels 13 GB/s of saved activations,
// AdamW and the norm's sum of squares 0.6 ns per element (28 bytes: 45 GB/s); a second thread
// of a rank adds 0.7 of a core (1.7x on both families). Four single-thread ranks on the 2
// cores: each one's CPU time per step was 1.4-2x what the same work took alone (context
// switches, cold caches); 1.4, with the communication's shared-memory copies counted as busy
// time as well.
DeviceSpec this_cpu() {
  const int cores = cpu::usable_cpu_count();
  DeviceSpec d{"cpu",
               static_cast<double>(read_host_memory().usable()),
               cores * cpu::core_peak_flops(),
               cores * 45 * kGB,
               2 * kGB,
               1.25 * kGB,  // 10 Gb/s Ethernet between nodes
               0.78,
               true};
  d.attention_efficiency = 0.24;
  d.activation_bw = 13 * kGB;
  d.cores = cores;
  d.thread_scaling = 0.7;
  d.oversubscription_cost = 1.4;
  d.rates_source = "the reference CPU's (AMD Zen 5, plan/device.cpp), not measured here";
  return d;
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
