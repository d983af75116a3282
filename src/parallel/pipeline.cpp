#include "parallel/pipeline.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace shardlm {

namespace {
constexpr int kTagActivation = 11;
constexpr int kTagGradient = 12;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Pipeline::Pipeline(GPT2& model, Communicator& pp) : model_(model), pp_(pp) {
  const size_t N = static_cast<size_t>(model.batch()) * model.seq_len();
  act_count_ = N * static_cast<size_t>(model.config().n_embd);
  auto& be = model.backend();
  input_ = be.alloc_floats(act_count_);
  grad_ = be.alloc_floats(act_count_);
  tokens_.resize(N);
  targets_.resize(N);
}

Pipeline::~Pipeline() {
  model_.backend().free_memory(input_);
  model_.backend().free_memory(grad_);
}

double Pipeline::forward(int m, const MicroBatchFetch& fetch) {
  fetch(m, tokens_.data(), targets_.data());
  const bool first = pp_.rank() == 0;
  return model_.forward(m % model_.slots(), tokens_.data(), targets_.data(),
                        first ? nullptr : input_);
}

void Pipeline::backward(int m, float loss_scale) {
  const bool last = pp_.rank() == pp_.size() - 1;
  model_.backward(m % model_.slots(), loss_scale, last ? nullptr : grad_);
}

double Pipeline::run(int M, const MicroBatchFetch& fetch, float loss_scale, bool train) {
  const int S = pp_.size(), s = pp_.rank();
  const bool first = s == 0, last = s == S - 1;
  SHARDLM_CHECK(M >= 1, "pipeline needs at least one micro-batch");
  SHARDLM_CHECK(S == 1 || model_.slots() >= std::min(M, S),
                "model has too few activation slots for 1F1B");
  wait_seconds_ = 0.0;
  double loss_sum = 0.0;
  auto timed = [&](auto&& fn) {
    const double t0 = now_seconds();
    fn();
    wait_seconds_ += now_seconds() - t0;
  };
  auto recv_forward = [&] {
    if (!first) timed([&] { pp_.recv(input_, act_count_, DType::F32, s - 1, kTagActivation); });
  };
  auto send_forward = [&](int m) {
    if (!last)
      pp_.send(model_.stage_output(m % model_.slots()), act_count_, DType::F32, s + 1,
               kTagActivation);
  };
  auto recv_backward = [&] {
    if (!last) timed([&] { pp_.recv(grad_, act_count_, DType::F32, s + 1, kTagGradient); });
  };
  auto send_backward = [&] {
    if (!first) pp_.send(model_.input_grad(), act_count_, DType::F32, s - 1, kTagGradient);
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
      timed([&] {
        pp_.send_recv(model_.stage_output(m % model_.slots()), act_count_, s + 1, kTagActivation,
                      grad_, act_count_, s + 1, kTagGradient, DType::F32);
      });
    backward(i, loss_scale);
    if (i == steady - 1) {
      send_backward();
    } else if (!first) {
      // send_backward_recv_forward: one exchange with the previous stage.
      timed([&] {
        pp_.send_recv(model_.input_grad(), act_count_, s - 1, kTagGradient, input_, act_count_,
                      s - 1, kTagActivation, DType::F32);
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
