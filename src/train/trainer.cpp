#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.h"

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

void validate_layout(const TrainSettings& st, const MeshShape& shape) {
  const ModelConfig& m = st.model;
  m.validate();
  auto refuse = [&](const std::string& why) {
    fail("invalid parallel layout (dp " + std::to_string(shape.dp) + ", tp " +
         std::to_string(shape.tp) + ", pp " + std::to_string(shape.pp) + "): " + why);
  };
  if (m.n_head % shape.tp != 0)
    refuse("n_head " + std::to_string(m.n_head) + " is not divisible by tp");
  if ((4 * m.n_embd) % shape.tp != 0)
    refuse("4*n_embd " + std::to_string(4 * m.n_embd) + " is not divisible by tp");
  if (m.padded_vocab() % shape.tp != 0)
    refuse("padded vocabulary " + std::to_string(m.padded_vocab()) + " (vocab_size " +
           std::to_string(m.vocab_size) + " rounded up to a multiple of " +
           std::to_string(m.vocab_pad_multiple) + ") is not divisible by tp");
  pipeline_stage_ranges(m.n_layer, shape.pp, st.pipeline_layers);
  if (st.micro_batch < 1) refuse("micro-batch size must be >= 1");
  if (st.micro_batches < 1) refuse("micro-batches per step must be >= 1");
  if (st.seq_len < 1 || st.seq_len > m.max_seq_len)
    refuse("sequence length " + std::to_string(st.seq_len) + " must be in [1, max_seq_len " +
           std::to_string(m.max_seq_len) + "]");
  if (st.zero_stage != 0 && st.zero_stage != 1)
    refuse("--zero must be 0 or 1, got " + std::to_string(st.zero_stage));
}

namespace {
ShardSpec shard_for(const TrainSettings& st, const Mesh& mesh) {
  const auto ranges = pipeline_stage_ranges(st.model.n_layer, mesh.sizes().pp, st.pipeline_layers);
  ShardSpec spec;
  spec.tp_rank = mesh.tp_rank();
  spec.tp_size = mesh.sizes().tp;
  spec.layer_begin = ranges[static_cast<size_t>(mesh.pp_rank())].first;
  spec.layer_end = ranges[static_cast<size_t>(mesh.pp_rank())].second;
  spec.first_stage = mesh.pp_rank() == 0;
  spec.last_stage = mesh.pp_rank() == mesh.sizes().pp - 1;
  return spec;
}
}  // namespace

Trainer::Trainer(const TrainSettings& settings, Mesh& mesh, KernelBackend& backend)
    : settings_(settings), mesh_(mesh), be_(backend) {
  validate_layout(settings_, mesh.sizes());
  const ShardSpec spec = shard_for(settings_, mesh);
  const int dp = mesh.sizes().dp;
  // Flat buffers padded so that they split into dp equal, aligned ZeRO partitions.
  const size_t total = ParamLayout(settings_.model, spec).total();
  const size_t unit = static_cast<size_t>(dp) * ParamLayout::kAlign;
  flat_size_ = (total + unit - 1) / unit * unit;
  const int slots = std::min(settings_.micro_batches, mesh.sizes().pp);
  model_ = std::make_unique<GPT2>(settings_.model, spec, backend, mesh.tp(), settings_.micro_batch,
                                  settings_.seq_len, slots, flat_size_);
  model_->init_weights(settings_.seed);
  if (settings_.zero_stage == 1) {
    const size_t part = flat_size_ / static_cast<size_t>(dp);
    shard_begin_ = part * static_cast<size_t>(mesh.dp_rank());
    shard_end_ = shard_begin_ + part;
    grad_shard_ = be_.alloc_floats(part);
  } else {
    shard_begin_ = 0;
    shard_end_ = flat_size_;
  }
  optimizer_ =
      std::make_unique<AdamW>(settings_.optim, model_->layout(), backend, shard_begin_, shard_end_);
  pipeline_ = std::make_unique<Pipeline>(*model_, mesh.pp());
}

Trainer::~Trainer() {
  if (grad_shard_) be_.free_memory(grad_shard_);
}

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

void Trainer::sync_tied_embedding() {
  // First and last stage each hold wte; its gradient is the sum of both contributions, and
  // a + b == b + a in floating point, so both copies stay bit-identical.
  const int S = mesh_.sizes().pp, s = mesh_.pp_rank();
  if (S == 1 || (s != 0 && s != S - 1)) return;
  const TensorView& v = model_->layout().get("wte");
  const int peer = s == 0 ? S - 1 : 0;
  float* g = model_->grads() + v.flat_offset;
  std::vector<float> other(v.numel);
  if (be_.host_memory()) {
    mesh_.pp().send_recv(g, v.numel, peer, 21, other.data(), v.numel, peer, 21, DType::F32);
    be_.add_inplace(g, other.data(), v.numel);
    return;
  }
  std::vector<float> mine(v.numel);  // device backends: exchange through host copies
  be_.copy_to_host(mine.data(), g, v.numel * sizeof(float));
  mesh_.pp().send_recv(mine.data(), v.numel, peer, 21, other.data(), v.numel, peer, 21, DType::F32);
  for (size_t i = 0; i < v.numel; ++i) mine[i] += other[i];
  be_.copy_from_host(g, mine.data(), v.numel * sizeof(float));
}

void Trainer::reduce_gradients() {
  Communicator& dp = mesh_.dp();
  const int D = dp.size();
  float* g = model_->grads();
  const float inv = 1.0f / static_cast<float>(D);
  // ZeRO-1 always fills this rank's gradient shard (with dp = 1 the reduce-scatter is a copy).
  if (settings_.zero_stage == 1) {
    const size_t part = shard_end_ - shard_begin_;
    dp.reduce_scatter(g, grad_shard_, part, DType::F32, ReduceOp::Sum);
    be_.scale_inplace(grad_shard_, inv, part);
    return;
  }
  if (D == 1) return;
  // Bucketed all-reduce: bounded message sizes, averaged.
  constexpr size_t kBucket = size_t{1} << 24;
  for (size_t off = 0; off < flat_size_; off += kBucket) {
    const size_t n = std::min(kBucket, flat_size_ - off);
    dp.all_reduce(g + off, n, DType::F32, ReduceOp::Sum);
  }
  be_.scale_inplace(g, inv, flat_size_);
}

double Trainer::global_grad_norm() {
  // Sum of squares over the primary copy of every parameter element this rank is responsible
  // for: its ZeRO shard, or (without ZeRO) everything on DP rank 0 only, since DP replicas hold
  // identical averaged gradients. Then one all-reduce over the world.
  double ss = 0.0;
  const bool zero = settings_.zero_stage == 1;
  if (zero || mesh_.dp_rank() == 0) {
    const float* g = zero ? grad_shard_ : model_->grads();
    for (const auto& v : model_->layout().views()) {
      if (!v.primary) continue;
      const size_t lo = std::max(shard_begin_, v.flat_offset);
      const size_t hi = std::min(shard_end_, v.flat_offset + v.numel);
      if (lo < hi) ss += be_.sum_squares(g + (lo - shard_begin_), hi - lo);
    }
  }
  mesh_.world().all_reduce(&ss, 1, DType::F64, ReduceOp::Sum);
  return std::sqrt(ss);
}

StepResult Trainer::train_step(int step, uint64_t first_sample, const BatchSource& data,
                               bool skip_non_finite) {
  model_->zero_grads();
  const double loss_sum = run_micro_batches(first_sample, data, true);
  sync_tied_embedding();
  reduce_gradients();
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
           "); stopping before the update so the last checkpoint stays good (use --on-nan skip to "
           "skip such steps)");
    r.skipped = true;
    return r;
  }
  const float scale = clip_scale(settings_.optim, r.grad_norm);
  r.clipped = scale < 1.0f;
  float* params = model_->params();
  if (settings_.zero_stage == 1) {
    const size_t part = shard_end_ - shard_begin_;
    optimizer_->update(params + shard_begin_, grad_shard_, step, scale);
    // Every DP rank gets the updated shards of the others. The send block is copied out first
    // because it lies inside the receive buffer.
    std::vector<float> mine(part);
    be_.copy_to_host(mine.data(), params + shard_begin_, part * sizeof(float));
    mesh_.dp().all_gather(mine.data(), params, part, DType::F32);
  } else {
    optimizer_->update(params, model_->grads(), step, scale);
  }
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
