#include "parallel/pipeline.h"

#include <algorithm>

#include "core/clock.h"
#include "core/error.h"
#include "core/trace.h"
#include "kernels/backend.h"
#include "parallel/message_tags.h"

namespace shardlm {

std::vector<std::pair<int, int>> pipeline_stage_ranges(int n_layer, int pp,
                                                       const std::vector<int>& layers) {
  std::vector<std::pair<int, int>> ranges;
  if (!layers.empty()) {
    if (static_cast<int>(layers.size()) != pp)
      fail("--pp-layers lists " + std::to_string(layers.size()) + " stages but pp is " +
           std::to_string(pp));
    int begin = 0;
    for (size_t s = 0; s < layers.size(); ++s) {
      if (layers[s] < 1)
        fail("--pp-layers: stage " + std::to_string(s) + " has " + std::to_string(layers[s]) +
             " layers (need >= 1)");
      ranges.emplace_back(begin, begin + layers[s]);
      begin += layers[s];
    }
    if (begin != n_layer)
      fail("--pp-layers sums to " + std::to_string(begin) + " layers but the model has n_layer " +
           std::to_string(n_layer));
    return ranges;
  }
  if (pp > n_layer)
    fail("pp " + std::to_string(pp) + " is larger than n_layer " + std::to_string(n_layer) +
         ": every stage needs a layer");
  // Even split; the first stages take the remainder (the last stage also runs the LM head).
  int begin = 0;
  for (int s = 0; s < pp; ++s) {
    const int n = n_layer / pp + (s < n_layer % pp ? 1 : 0);
    ranges.emplace_back(begin, begin + n);
    begin += n;
  }
  return ranges;
}

Pipeline::Pipeline(PipelineStage& stage, Communicator& pp) : stage_(stage), pp_(pp) {
  const size_t N = stage.tokens_per_micro_batch();
  act_count_ = stage.boundary_numel();
  auto& be = stage.backend();
  input_ = be.alloc_floats(act_count_, MemoryRole::Communication);
  grad_ = be.alloc_floats(act_count_, MemoryRole::Communication);
  tokens_.resize(N);
  targets_.resize(N);
}

Pipeline::~Pipeline() {
  stage_.backend().free_memory(input_);
  stage_.backend().free_memory(grad_);
}

double Pipeline::forward(int m, const MicroBatchFetch& fetch) {
  const trace::Span span("forward", trace::Kind::Step, 0, -1, "micro_batch");
  fetch(m, tokens_.data(), targets_.data());
  const bool first = pp_.rank() == 0;
  return stage_.forward(m % stage_.slots(), tokens_.data(), targets_.data(),
                        first ? nullptr : input_);
}

void Pipeline::backward(int m, float loss_scale) {
  const trace::Span span("backward", trace::Kind::Step, 0, -1, "micro_batch");
  const bool last = pp_.rank() == pp_.size() - 1;
  stage_.backward(m % stage_.slots(), loss_scale, last ? nullptr : grad_);
}

double Pipeline::run(int M, const MicroBatchFetch& fetch, float loss_scale, bool train) {
  const int S = pp_.size(), s = pp_.rank();
  const bool first = s == 0, last = s == S - 1;
  SHARDLM_CHECK(M >= 1, "pipeline needs at least one micro-batch");
  SHARDLM_CHECK(S == 1 || stage_.slots() >= std::min(M, S),
                "model has too few activation slots for 1F1B");
  wait_seconds_ = 0.0;
  double loss_sum = 0.0;
  const uint64_t act_bytes = act_count_ * sizeof(float);
  // Every exchange with a neighbour stage is a Pipeline span (the step-time split's bubble:
  // waiting for the neighbour, the transfer included); receives also count as wait_seconds_.
  auto timed = [&](const char* what, int peer, uint64_t bytes, auto&& fn) {
    const trace::Span span(what, trace::Kind::Pipeline, bytes, peer, "pipeline");
    const double t0 = monotonic_seconds();
    fn();
    wait_seconds_ += monotonic_seconds() - t0;
  };
  auto recv_forward = [&] {
    if (!first)
      timed("recv_activation", s - 1, act_bytes,
            [&] { pp_.recv(input_, act_count_, DType::F32, s - 1, kTagActivation); });
  };
  auto send_forward = [&](int m) {
    if (last) return;
    const trace::Span span("send_activation", trace::Kind::Pipeline, act_bytes, s + 1, "pipeline");
    pp_.send(stage_.stage_output(m % stage_.slots()), act_count_, DType::F32, s + 1,
             kTagActivation);
  };
  auto recv_backward = [&] {
    if (!last)
      timed("recv_grad", s + 1, act_bytes,
            [&] { pp_.recv(grad_, act_count_, DType::F32, s + 1, kTagActivationGrad); });
  };
  auto send_backward = [&] {
    if (first) return;
    const trace::Span span("send_grad", trace::Kind::Pipeline, act_bytes, s - 1, "pipeline");
    pp_.send(stage_.input_grad(), act_count_, DType::F32, s - 1, kTagActivationGrad);
  };

  if (!train) {
    for (int m = 0; m < M; ++m) {
      recv_forward();
      loss_sum += forward(m, fetch);
      send_forward(m);
    }
    return loss_sum;
  }

  const int warmup = std::min(S - s - 1, M);
  const int steady = M - warmup;
  for (int m = 0; m < warmup; ++m) {
    recv_forward();
    loss_sum += forward(m, fetch);
    send_forward(m);
  }
  if (steady > 0) recv_forward();
  for (int i = 0; i < steady; ++i) {
    const int m = warmup + i;  // forward micro-batch; backward runs micro-batch i
    loss_sum += forward(m, fetch);
    // send_forward_recv_backward: one exchange with the next stage.
    if (!last)
      timed("send_activation_recv_grad", s + 1, 2 * act_bytes, [&] {
        pp_.send_recv(stage_.stage_output(m % stage_.slots()), act_count_, s + 1, kTagActivation,
                      grad_, act_count_, s + 1, kTagActivationGrad, DType::F32);
      });
    backward(i, loss_scale);
    if (i == steady - 1) {
      send_backward();
    } else if (!first) {
      // send_backward_recv_forward: one exchange with the previous stage.
      timed("send_grad_recv_activation", s - 1, 2 * act_bytes, [&] {
        pp_.send_recv(stage_.input_grad(), act_count_, s - 1, kTagActivationGrad, input_,
                      act_count_, s - 1, kTagActivation, DType::F32);
      });
    }
  }
  for (int i = steady; i < M; ++i) {
    recv_backward();
    backward(i, loss_scale);
    send_backward();
  }
  return loss_sum;
}

}  // namespace shardlm
