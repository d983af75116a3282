// The planner's step-time model (plan/step_time.h): a GPU's compute is the model's FLOPs at the
// device's rates; a CPU rank runs the threads shardlm gives it (a second thread adding
// thread_scaling of a core); ranks that oversubscribe a node take turns on its cores.
#include <gtest/gtest.h>

#include "model/config.h"
#include "model/family.h"
#include "plan/device.h"
#include "plan/step_time.h"

using namespace shardlm;

namespace {

ModelConfig gpt2_model() {
  ModelConfig m = model_preset("tiny");
  m.n_layer = 4;
  m.n_embd = 256;
  m.n_head = 8;
  m.vocab_size = 4096;
  m.max_seq_len = 128;
  return m;
}

Layout dp_layout(int dp, int micro_batches) {
  Layout l;
  l.dp = dp;
  l.micro_batch = 2;
  l.micro_batches = micro_batches;
  return l;
}

// A 2-core CPU node with the calibrated rates, whatever machine runs the test.
DeviceSpec two_core_cpu() {
  DeviceSpec d = device_spec("cpu");
  d.peak_flops = d.peak_flops / d.cores * 2;
  d.mem_bw = d.mem_bw / d.cores * 2;
  d.cores = 2;
  return d;
}

}  // namespace

TEST(StepTime, GpuComputeIsTheModelFlopsAtTheDeviceRate) {
  const ModelConfig m = gpt2_model();
  const DeviceSpec h100 = device_spec("h100");
  const Layout one = dp_layout(1, 3);
  const StepTime t = predict_step_time(m, one, 128, h100, 8);
  // Dense and attention FLOPs at the same efficiency on a GPU: the family's count, all of it.
  const double flops = model_family("gpt2").flops_per_token(m, 128) * 2 * 128 * 3;
  EXPECT_NEAR(t.compute_s, flops / (h100.peak_flops * h100.efficiency), 1e-9 * t.compute_s);
  EXPECT_EQ(t.node_s, 0.0);
  EXPECT_DOUBLE_EQ(t.total_s, t.compute_s + t.comm_s + t.optimizer_s);
}

TEST(StepTime, ASecondThreadAddsItsShareOfACore) {
  const ModelConfig m = gpt2_model();
  DeviceSpec cpu = two_core_cpu();
  const StepTime two_threads = predict_step_time(m, dp_layout(1, 2), 128, cpu, 1);
  cpu.thread_scaling = 0;  // the second thread adds nothing: one core's speed
  const StepTime one_core = predict_step_time(m, dp_layout(1, 2), 128, cpu, 1);
  EXPECT_NEAR(one_core.compute_s / two_threads.compute_s, 1.7, 1e-9);
  EXPECT_NEAR(one_core.optimizer_s / two_threads.optimizer_s, 1.7, 1e-9);
  EXPECT_EQ(two_threads.node_s, 0.0);  // one rank does not oversubscribe 2 cores
}

TEST(StepTime, OversubscribedRanksTakeTurnsOnTheCores) {
  const ModelConfig m = gpt2_model();
  DeviceSpec cpu = two_core_cpu();
  cpu.intra_bw = cpu.inter_bw = 1e30;  // no communication time
  cpu.oversubscription_cost = 1;
  // Four single-thread ranks, one micro-batch each, on 2 cores: together the work of one
  // single-thread rank with all four micro-batches (and four optimizer updates), half of it
  // per core.
  const StepTime dp4 = predict_step_time(m, dp_layout(4, 1), 128, cpu, 4);
  cpu.thread_scaling = 0;
  StepTime alone = predict_step_time(m, dp_layout(1, 4), 128, cpu, 1);
  EXPECT_NEAR(dp4.node_s, (alone.compute_s + 4 * alone.optimizer_s) / 2, 1e-9 * dp4.node_s);
  EXPECT_DOUBLE_EQ(dp4.total_s, dp4.node_s);
  // Dearer computation on shared cores, and the communication as busy time, add to it.
  cpu.thread_scaling = 0.7;
  cpu.oversubscription_cost = 1.5;
  EXPECT_NEAR(predict_step_time(m, dp_layout(4, 1), 128, cpu, 4).node_s, 1.5 * dp4.node_s,
              1e-9 * dp4.node_s);
  cpu.intra_bw = 1e9;
  const StepTime slow_link = predict_step_time(m, dp_layout(4, 1), 128, cpu, 4);
  EXPECT_NEAR(slow_link.node_s, 1.5 * dp4.node_s + 4 * slow_link.comm_s / 2, 1e-9 * dp4.node_s);
}
