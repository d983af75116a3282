#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.h"
#include "core/trace.h"
#include "kernels/host_staging.h"
#include "parallel/message_tags.h"

namespace shardlm {

void validate_layout(const TrainSettings& st, const MeshShape& shape) {
  const ModelConfig& m = st.model;
  m.validate();
  auto refuse = [&](const std::string& why) {
    fail("invalid parallel layout (dp " + std::to_string(shape.dp) + ", tp " +
         std::to_string(shape.tp) + ", pp " + std::to_string(shape.pp) + "): " + why);
  };
  const std::string tp_problem = model_family(m.family).tensor_parallel_problem(m, shape.tp);
  if (!tp_problem.empty()) refuse(tp_problem);
  pipeline_stage_ranges(m.n_layer, shape.pp, st.pipeline_layers);
}

namespace {
ShardSpec shard_for(const TrainSettings& st, const Mesh& mesh) {
  const auto ranges = pipeline_stage_ranges(st.model.n_layer, mesh.sizes().pp, st.pipeline_layers);
  const auto stage = static_cast<size_t>(mesh.pp_rank());
  ShardSpec spec;
  spec.tp_rank = mesh.tp_rank();
  spec.tp_size = mesh.sizes().tp;
  spec.layer_begin = ranges[stage].first;
  spec.layer_end = ranges[stage].second;
  spec.first_stage = mesh.pp_rank() == 0;
  spec.last_stage = mesh.pp_rank() == mesh.sizes().pp - 1;
  return spec;
}
}  // namespace

Trainer::Trainer(const TrainSettings& settings, Mesh& mesh, KernelBackend& backend)
    : settings_(settings), mesh_(mesh), be_(backend) {
  validate_layout(settings_, mesh.sizes());
  const ShardSpec spec = shard_for(settings_, mesh);
  // Flat buffers padded so that they split into dp equal, aligned ZeRO partitions.
  const ParamLayout layout(settings_.model, spec);
  const size_t flat_size =
      GradientSync::padded_flat_size(layout.total(), mesh.sizes().dp, ParamLayout::kAlign);
  // ZeRO-2/3 work per layer: the gradient sync decides what the stage's buffers keep, and the
  // stage reports each layer's use to it.
  grad_sync_ = std::make_unique<GradientSync>(mesh.dp(), backend, flat_size, settings_.zero_stage,
                                              layer_units(layout));
  const int slots = std::min(settings_.micro_batches, mesh.sizes().pp);
  model_ = make_model_stage(settings_.model, spec, backend, mesh.tp(), settings_.micro_batch,
                            settings_.seq_len, slots, flat_size, settings_.recompute,
                            grad_sync_->storage());
  model_->init_weights(settings_.seed);
  grad_sync_->bind(model_->weights().param_buffer(), model_->weights().grad_buffer());
  if (grad_sync_->shards_gradients()) model_->set_unit_hooks(grad_sync_.get());
  optimizer_ = std::make_unique<AdamW>(settings_.optim, model_->layout(), backend,
                                       grad_sync_->shard_begin(), grad_sync_->shard_end());
  pipeline_ = std::make_unique<Pipeline>(*model_, mesh.pp());
}

Trainer::~Trainer() = default;

uint64_t Trainer::samples_per_step() const {
  return static_cast<uint64_t>(settings_.micro_batch) * settings_.micro_batches * mesh_.sizes().dp;
}

double Trainer::run_micro_batches(uint64_t first_sample, const BatchSource& data, bool train) {
  const int M = settings_.micro_batches, B = settings_.micro_batch, D = mesh_.sizes().dp,
            r = mesh_.dp_rank();
  // Micro-batch m of DP rank r reads samples first + (m*D + r)*B ..: the union over DP ranks
  // is exactly what a single rank with D*M micro-batches would read.
  MicroBatchFetch fetch = [&](int m, int32_t* tokens, int32_t* targets) {
    data(first_sample + (static_cast<uint64_t>(m) * D + r) * B, B, tokens, targets);
  };
  return pipeline_->run(M, fetch, 1.0f / static_cast<float>(M), train);
}

double Trainer::average_loss(double local_loss_sum, int micro_batches) {
  // The last stage holds the loss: average over DP, then give it to every pipeline stage.
  double loss = mesh_.pp_rank() == mesh_.sizes().pp - 1 ? local_loss_sum / micro_batches : 0.0;
  mesh_.dp().all_reduce(&loss, 1, DType::F64, ReduceOp::Sum);
  loss /= mesh_.sizes().dp;
  mesh_.pp().broadcast(&loss, 1, DType::F64, mesh_.sizes().pp - 1);
  return loss;
}

void Trainer::sync_tied_tensors() {
  // First and last stage each hold a tied tensor; its gradient is the sum of both
  // contributions, and a + b == b + a in floating point, so both copies stay bit-identical.
  const int S = mesh_.sizes().pp, s = mesh_.pp_rank();
  if (S == 1 || (s != 0 && s != S - 1)) return;
  const int peer = s == 0 ? S - 1 : 0;
  for (const TensorView& v : model_->layout().views()) {
    if (!v.tied_across_stages) continue;
    float* g = model_->grad(v.name);
    float* other = be_.alloc_floats(
        v.numel, MemoryRole::Communication);  // the peer's gradient, then summed on the backend
    const HostStaged mine(be_, g, v.numel);
    HostStaged received(be_, other, v.numel, HostStaged::Mode::Write);
    mesh_.pp().send_recv(mine.data(), v.numel, peer, kTagTiedGradient, received.data(), v.numel,
                         peer, kTagTiedGradient, DType::F32);
    received.flush();
    be_.add_inplace(g, other, v.numel);
    be_.free_memory(other);
  }
}

double Trainer::global_grad_norm() {
  // Sum of squares over the primary copy of every parameter element this rank is responsible
  // for (its ZeRO shard, or everything on DP rank 0 only), then one all-reduce over the world.
  double ss = 0.0;
  if (grad_sync_->counts_in_grad_norm()) {
    const size_t begin = shard_begin(), end = shard_end();
    const float* g = grad_sync_->shard_grads();
    for (const auto& v : model_->layout().views()) {
      if (!v.primary) continue;
      const size_t lo = std::max(begin, v.flat_offset);
      const size_t hi = std::min(end, v.flat_offset + v.numel);
      if (lo < hi) ss += be_.sum_squares(g + (lo - begin), hi - lo);
    }
  }
  mesh_.world().all_reduce(&ss, 1, DType::F64, ReduceOp::Sum);
  return std::sqrt(ss);
}

StepResult Trainer::train_step(int step, uint64_t first_sample, const BatchSource& data,
                               bool skip_non_finite) {
  const trace::Span span("train_step", trace::Kind::Step, 0, -1, "step");
  grad_sync_->begin_step();
  const double loss_sum = run_micro_batches(first_sample, data, true);
  {
    const trace::Span phase("gradient_sync", trace::Kind::Step, 0, -1, "step");
    sync_tied_tensors();
    grad_sync_->reduce();
  }
  StepResult r;
  r.loss = average_loss(loss_sum, settings_.micro_batches);
  r.grad_norm = global_grad_norm();
  r.lr = learning_rate(settings_.optim, step);
  // Loss and norm are identical on every rank, so every rank takes the same branch.
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    if (!skip_non_finite)
      fail("non-finite " + std::string(std::isfinite(r.loss) ? "gradient norm" : "loss") +
           " at step " + std::to_string(step) + " (loss " + std::to_string(r.loss) +
           ", grad norm " + std::to_string(r.grad_norm) +
           "); stopping before the update so the last checkpoint stays good (use --on-nan skip "
           "to skip such steps)");
    r.skipped = true;
    return r;
  }
  const float scale = clip_scale(settings_.optim, r.grad_norm);
  r.clipped = scale < 1.0f;
  if (before_update_) before_update_();
  const trace::Span phase("optimizer", trace::Kind::Step, 0, -1, "step");
  float* shard = model_->weights().param_buffer().at(shard_begin(), shard_end() - shard_begin());
  optimizer_->update(shard, grad_sync_->shard_grads(), step, scale);
  grad_sync_->gather_params();
  return r;
}

double Trainer::evaluate(uint64_t first, int batches, const BatchSource& data) {
  double total = 0.0;
  for (int i = 0; i < batches; ++i)
    total += average_loss(
        run_micro_batches(first + static_cast<uint64_t>(i) * samples_per_step(), data, false),
        settings_.micro_batches);
  return total / batches;
}

}  // namespace shardlm
