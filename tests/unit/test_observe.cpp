// The tracing seam (core/trace.h) and the metrics' TensorBoard tags: what is recorded when,
// and which time the step-time split counts.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/trace.h"
#include "train/metrics_log.h"
#include "train/tensorboard_log.h"

namespace shardlm {
namespace {

void busy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

TEST(Trace, RecordsOnlyInsideTheWindow) {
  { const trace::Span s("matmul_forward", trace::Kind::Kernel, 0, -1, "matmul"); }
  trace::start_recording(7);
  {
    const trace::Span k("matmul_forward", trace::Kind::Kernel, 0, -1, "matmul");
    const trace::Span c("all_reduce", trace::Kind::Comm, 4096, -1, "tp");
  }
  trace::set_step(8);
  { const trace::Span s("send_grad", trace::Kind::Pipeline, 128, 0, "pipeline"); }
  const std::vector<trace::Event> events = trace::stop_recording();
  { const trace::Span s("matmul_forward", trace::Kind::Kernel, 0, -1, "matmul"); }
  ASSERT_EQ(events.size(), 3u);
  // Closed innermost first.
  EXPECT_EQ(events[0].name, "tp.all_reduce");
  EXPECT_EQ(events[0].bytes, 4096u);
  EXPECT_EQ(events[0].step, 7);
  EXPECT_EQ(events[1].name, "matmul_forward");  // a kernel is named by its op
  EXPECT_EQ(events[1].group, "matmul");
  EXPECT_EQ(events[1].kind, trace::Kind::Kernel);
  EXPECT_LE(events[1].start_ns, events[0].start_ns);
  EXPECT_GE(events[1].duration_ns, events[0].duration_ns);
  EXPECT_EQ(events[2].name, "pipeline.send_grad");
  EXPECT_EQ(events[2].peer, 0);
  EXPECT_EQ(events[2].step, 8);
  EXPECT_TRUE(trace::stop_recording().empty());
}

TEST(Trace, TheSplitCountsOutermostCommAndPipelineSpansOnly) {
  const trace::TimeTotals t0 = trace::time_totals();
  {
    const trace::Span pipe("recv_activation", trace::Kind::Pipeline, 0, 1, "pipeline");
    const trace::Span comm("recv", trace::Kind::Comm, 0, 1, "pp");  // inside: bubble, not comm
    busy(20);
  }
  const trace::TimeTotals t1 = trace::time_totals();
  EXPECT_GE(t1.pipeline_s - t0.pipeline_s, 0.019);
  EXPECT_EQ(t1.comm_s, t0.comm_s);
  {
    const trace::Span comm("all_reduce", trace::Kind::Comm, 0, -1, "tp");
    busy(20);
  }
  const trace::TimeTotals t2 = trace::time_totals();
  EXPECT_GE(t2.comm_s - t1.comm_s, 0.019);  // sleep_for waits at least as long as asked
  EXPECT_EQ(t2.pipeline_s, t1.pipeline_s);
  {
    const trace::Span kernel("gelu_forward", trace::Kind::Kernel, 0, -1, "gelu");
    busy(5);  // kernels are never accounted: compute is the rest of the step
  }
  const trace::TimeTotals t3 = trace::time_totals();
  EXPECT_EQ(t3.comm_s, t2.comm_s);
  EXPECT_EQ(t3.pipeline_s, t2.pipeline_s);
}

TEST(MetricsLog, TensorBoardTags) {
  EXPECT_EQ(tensorboard_tag("loss", false), "train/loss");
  EXPECT_EQ(tensorboard_tag("peak_mem_bytes", false), "train/peak_mem_bytes");
  EXPECT_EQ(tensorboard_tag("val_loss", true), "val/loss");
  EXPECT_EQ(tensorboard_tag("val_bpb", true), "val/bpb");
}

TEST(TensorBoardLog, MaskedCrcOfNothingIsTheMaskConstant) {
  // CRC32C of no bytes is 0; the mask rotates it (still 0) and adds 0xa282ead8.
  EXPECT_EQ(masked_crc32c("", 0), 0xa282ead8u);
}

}  // namespace
}  // namespace shardlm
