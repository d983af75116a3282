// The cpu device's compute rates measured on the machine that plans (`shardlm plan --device
// cpu`): the model's own dense matmuls and its attention kernel, timed through the CPU backend
// on one thread and on all cores. plan/device.cpp's figures were measured on one reference CPU
// and are off by up to 1.5x on another (docs/planner.md, "Checked against measurement").
#pragma once

#include <string>

#include "model/config.h"
#include "plan/device.h"

namespace shardlm {

struct CpuCalibration {
  double dense_efficiency = 0;      // the matmuls' rate on one thread / the core's FMA peak
  double attention_efficiency = 0;  // the same for the attention over the sequence
  double thread_scaling = 0;        // the share of a core each thread past the first adds
  bool cores_busy = false;          // thread_scaling not measured: another process had a core
  double core_peak = 0;             // FLOP/s: the best of `core_peak` and the probe's own
  int threads = 1;                  // the all-core probe's threads
  double seconds = 0;               // what the probe took
};

// Times one forward + backward of every matmul of a layer and of the LM head (dimensions
// capped at 1024, 512 tokens) and of the attention of up to 4 heads at min(seq_len, 512),
// weighted by each one's share of the model's FLOPs: about 1 s (tiny models) to 2 s (gpt2-xl).
// `core_peak`: the core's FMA peak in FLOP/s already measured (kernels/cpu/peak_flops.h); the probe
// measures it again between its kernels and keeps the higher. Leaves the OpenMP thread count
// as it found it. The all-core runs count only while this process has its cores to itself.
CpuCalibration calibrate_cpu(const ModelConfig& cfg, int seq_len, double core_peak);

// `device` (device_spec("cpu")) with the measured rates in place of the reference ones.
void apply_calibration(DeviceSpec& device, const CpuCalibration& c);

}  // namespace shardlm
