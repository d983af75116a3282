// Pipeline parallelism: how a model's layers split into stages, and the 1F1B schedule
// (Megatron's non-interleaved schedule). The schedule knows nothing of the model: it drives a
// PipelineStage. Stage s of S first runs min(S-s-1, M) warm-up forwards, then alternates one
// forward and one backward, then drains the remaining backwards. Activations go forward and
// gradients go back between neighbouring stages; the paired exchanges use send_recv so that
// neighbours never both block in a send. With one stage it is forward(m), backward(m) for each
// micro-batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "parallel/comm.h"

namespace shardlm {

class KernelBackend;

// Layer range [begin, end) of every pipeline stage: `layers` per stage if given (must sum to
// n_layer, each >= 1), otherwise an even split with the remainder going to the first stages
// (the last stage also runs the LM head and the loss). Throws naming the values otherwise.
std::vector<std::pair<int, int>> pipeline_stage_ranges(int n_layer, int pp,
                                                       const std::vector<int>& layers);

// What the schedule needs of one rank's stage. Activations are kept per micro-batch "slot"
// so that several micro-batches can be in flight.
class PipelineStage {
 public:
  virtual ~PipelineStage() = default;
  virtual KernelBackend& backend() = 0;
  virtual int slots() const = 0;
  virtual size_t tokens_per_micro_batch() const = 0;  // B*T
  virtual size_t boundary_numel() const = 0;          // elements of the exchanged activation
  // Forward of one micro-batch. The first stage reads tokens [B,T] (host), the others
  // `input` (backend memory, boundary_numel()); the last stage reads targets [B,T] (host) and
  // returns the mean loss, the others return 0 and leave stage_output(slot).
  virtual float forward(int slot, const int32_t* tokens, const int32_t* targets,
                        const float* input) = 0;
  // Backward of the micro-batch in `slot`: the last stage starts from loss_scale * d(mean
  // loss), the others from output_grad. Parameter gradients accumulate; a non-first stage
  // leaves d(input) in input_grad().
  virtual void backward(int slot, float loss_scale, const float* output_grad) = 0;
  virtual const float* stage_output(int slot) const = 0;
  virtual const float* input_grad() const = 0;
};

// Fills tokens/targets [B,T] (host memory) of micro-batch m.
using MicroBatchFetch = std::function<void(int m, int32_t* tokens, int32_t* targets)>;

class Pipeline {
 public:
  Pipeline(PipelineStage& stage, Communicator& pp);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Runs M micro-batches; with train, also their backwards with loss scale `loss_scale`
  // (gradients accumulate in the stage). Returns the sum of the micro-batch mean losses on
  // the last stage, 0 on the others.
  double run(int M, const MicroBatchFetch& fetch, float loss_scale, bool train);

  // Time this rank spent waiting in pipeline receives during the last run (bubble + comm).
  double last_wait_seconds() const { return wait_seconds_; }

 private:
  double forward(int m, const MicroBatchFetch& fetch);
  void backward(int m, float loss_scale);

  PipelineStage& stage_;
  Communicator& pp_;
  size_t act_count_;        // boundary_numel()
  float* input_ = nullptr;  // received activations (backend memory)
  float* grad_ = nullptr;   // received output gradient
  std::vector<int32_t> tokens_, targets_;
  double wait_seconds_ = 0.0;
};

}  // namespace shardlm
