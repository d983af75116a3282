// The 1F1B pipeline schedule (Megatron's non-interleaved schedule). Stage s of S first runs
// min(S-s-1, M) warm-up forwards, then alternates one forward and one backward, then drains
// the remaining backwards. Activations go forward and gradients go back between neighbouring
// stages; the paired exchanges use send_recv so that neighbours never both block in a send.
// With one stage it degenerates to forward(m), backward(m) for each micro-batch.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/gpt2.h"
#include "parallel/comm.h"

namespace shardlm {

// Fills tokens/targets [B,T] (host memory) of micro-batch m.
using MicroBatchFetch = std::function<void(int m, int32_t* tokens, int32_t* targets)>;

class Pipeline {
 public:
  Pipeline(GPT2& model, Communicator& pp);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs M micro-batches; with train, also their backwards with loss scale `loss_scale`
  // (gradients accumulate in the model). Returns the sum of the micro-batch mean losses on
  // the last stage, 0 on the others.
  double run(int M, const MicroBatchFetch& fetch, float loss_scale, bool train);

  // Time this rank spent waiting in pipeline receives during the last run (bubble + comm).
  double last_wait_seconds() const { return wait_seconds_; }

 private:
  double forward(int m, const MicroBatchFetch& fetch);
  void backward(int m, float loss_scale);

  GPT2& model_;
  Communicator& pp_;
  size_t act_count_;        // B*T*C elements per exchanged tensor
  float* input_ = nullptr;  // [B,T,C] received activations (backend memory)
  float* grad_ = nullptr;   // [B,T,C] received output gradient
  std::vector<int32_t> tokens_, targets_;
  double wait_seconds_ = 0.0;
};

}  // namespace shardlm
