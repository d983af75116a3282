#include "train/checkpointing.h"

#include <algorithm>

#include "checkpoint/rect.h"
#include "core/error.h"
#include "kernels/host_staging.h"

namespace shardlm {

namespace {

Rect view_rect(const TensorView& v) {
  return Rect{v.offset, v.local_shape};
}

// Recursive helper: elements [a, b) of the sub-block at dims k.. with the outer coordinates
// fixed in `prefix` (global coordinates).
void split_range(const Rect& block, size_t k, std::vector<int64_t>& prefix, int64_t a, int64_t b,
                 std::vector<Rect>& out) {
  if (a >= b) return;
  const size_t n = block.count.size();
  if (k + 1 == n) {
    Rect r;
    r.offset = prefix;
    r.offset.push_back(block.offset[k] + a);
    r.count.assign(k, 1);
    r.count.push_back(b - a);
    out.push_back(std::move(r));
    return;
  }
  int64_t row = 1;  // elements per index of dimension k
  for (size_t d = k + 1; d < n; ++d) row *= block.count[d];
  int64_t i0 = a / row;
  const int64_t i1 = b / row;
  auto descend = [&](int64_t i, int64_t lo, int64_t hi) {
    prefix.push_back(block.offset[k] + i);
    split_range(block, k + 1, prefix, lo, hi, out);
    prefix.pop_back();
  };
  if (i0 == i1) {
    descend(i0, a - i0 * row, b - i0 * row);
    return;
  }
  if (a % row != 0) {
    descend(i0, a % row, row);
    ++i0;
  }
  if (i1 > i0) {  // whole rows i0..i1-1
    Rect r;
    r.offset = prefix;
    r.count.assign(k, 1);
    r.offset.push_back(block.offset[k] + i0);
    r.count.push_back(i1 - i0);
    for (size_t d = k + 1; d < n; ++d) {
      r.offset.push_back(block.offset[d]);
      r.count.push_back(block.count[d]);
    }
    out.push_back(std::move(r));
  }
  if (b % row != 0) descend(i1, 0, b % row);
}

// The part of `view` inside the flat range [begin, end): element range within the view.
bool view_range(const TensorView& v, size_t begin, size_t end, size_t& lo, size_t& hi) {
  lo = std::max(begin, v.flat_offset);
  hi = std::min(end, v.flat_offset + v.numel);
  return lo < hi;
}

}  // namespace

std::vector<Rect> range_to_rects(const Rect& block, int64_t begin, int64_t end) {
  std::vector<Rect> out;
  std::vector<int64_t> prefix;
  split_range(block, 0, prefix, begin, end, out);
  return out;
}

FlatRange written_param_range(Trainer& trainer) {
  if (trainer.gradient_sync().shards_params()) return {trainer.shard_begin(), trainer.shard_end()};
  return {0, trainer.model().layout().total()};
}

std::vector<CheckpointSlice> training_checkpoint_slices(Trainer& trainer, const float* params,
                                                        const float* m, const float* v) {
  ModelStage& model = trainer.model();
  AdamW& opt = trainer.optimizer();
  const GradientSync& sync = trainer.gradient_sync();
  std::vector<CheckpointSlice> slices;
  // The rectangles of view's elements inside the flat range [begin, end), from `data` (which
  // holds that range).
  auto add_range = [&](const TensorView& view, const char* role, size_t begin, size_t end,
                       const float* data) {
    size_t lo = 0, hi = 0;
    if (!view_range(view, begin, end, lo, hi)) return;
    const int64_t a = static_cast<int64_t>(lo - view.flat_offset),
                  b = static_cast<int64_t>(hi - view.flat_offset);
    const float* at = data + (lo - begin);
    for (const Rect& r : range_to_rects(view_rect(view), a, b)) {
      slices.push_back({role, view.name, view.global_shape, r.offset, r.count, at});
      at += r.numel();
    }
  };
  for (const auto& view : model.layout().views()) {
    if (!view.primary) continue;
    // ZeRO-3: each DP rank writes the parameters of its partition (it holds no others).
    if (sync.shards_params())
      add_range(view, kRoleParam, opt.begin(), opt.end(), params);
    else if (sync.writes_params())
      slices.push_back({kRoleParam, view.name, view.global_shape, view.offset, view.local_shape,
                        params + view.flat_offset});
    if (!sync.writes_optimizer_state()) continue;
    add_range(view, kRoleExpAvg, opt.begin(), opt.end(), m);
    add_range(view, kRoleExpAvgSq, opt.begin(), opt.end(), v);
  }
  return slices;
}

CheckpointInfo training_checkpoint_info(Trainer& trainer, const TrainingCheckpointInfo& info) {
  CheckpointInfo ci;
  ci.config_text = info.config_text;
  ci.tokenizer_model = info.tokenizer_model;
  const MeshShape& shape = trainer.mesh().sizes();
  ci.metadata["step"] = info.step;
  ci.metadata["samples_consumed"] = static_cast<int64_t>(info.samples_consumed);
  ci.metadata["layout.tp"] = static_cast<int64_t>(shape.tp);
  ci.metadata["layout.pp"] = static_cast<int64_t>(shape.pp);
  ci.metadata["layout.dp"] = static_cast<int64_t>(shape.dp);
  ci.metadata["layout.zero"] = static_cast<int64_t>(trainer.settings().zero_stage);
  ci.metadata["seed"] = static_cast<int64_t>(trainer.settings().seed);
  // shardlm keeps no RNG stream state: initialisation is counter-based and the data order is
  // a pure function of (seed, sample index), so (seed, samples_consumed) restores both.
  ci.metadata["rng"] = std::string("stateless: counter-based init, data order = f(seed, sample)");
  return ci;
}

std::filesystem::path save_training_checkpoint(Trainer& trainer, const std::filesystem::path& root,
                                               const TrainingCheckpointInfo& info) {
  ModelStage& model = trainer.model();
  AdamW& opt = trainer.optimizer();
  // Slices are written straight from the flat buffers when they are host memory (CPU); a
  // device backend stages them through host copies.
  KernelBackend& be = model.backend();
  const FlatRange written = written_param_range(trainer);
  const HostStaged params(be, model.weights().param_buffer().at(written.begin, written.size()),
                          written.size());
  const HostStaged m(be, opt.exp_avg(), opt.end() - opt.begin());
  const HostStaged v(be, opt.exp_avg_sq(), opt.end() - opt.begin());
  return save_checkpoint(trainer.mesh().world(), root, info.step,
                         training_checkpoint_slices(trainer, params.data(), m.data(), v.data()),
                         training_checkpoint_info(trainer, info));
}

namespace {
void check_shape(CheckpointReader& reader, const std::string& role, const TensorView& view) {
  const auto& shape = reader.global_shape(role, view.name);
  if (shape != view.global_shape)
    fail("checkpoint " + reader.dir().string() + ": tensor " + role + "/" + view.name +
         " has shape " + shape_string(shape) + " but this model expects " +
         shape_string(view.global_shape));
}
}  // namespace

void load_model_params(ModelWeights& weights, CheckpointReader& reader) {
  KernelBackend& be = weights.backend();
  FlatBuffer& params = weights.param_buffer();
  std::vector<float> host;
  for (const auto& view : weights.layout().views()) {
    check_shape(reader, kRoleParam, view);
    if (params.in_place(view.flat_offset, view.numel)) {
      HostStaged dest(be, params.at(view.flat_offset, view.numel), view.numel,
                      HostStaged::Mode::Write);
      reader.read(kRoleParam, view.name, view.offset, view.local_shape, dest.data());
      dest.flush();
      continue;
    }
    // ZeRO-3 keeps part of a layer's tensor: read it whole, keep that part.
    host.resize(view.numel);
    reader.read(kRoleParam, view.name, view.offset, view.local_shape, host.data());
    params.store(view.flat_offset, host.data(), view.numel);
  }
}

void load_training_checkpoint(Trainer& trainer, CheckpointReader& reader) {
  ModelStage& model = trainer.model();
  load_model_params(model.weights(), reader);
  AdamW& opt = trainer.optimizer();
  KernelBackend& be = model.backend();
  // Read straight into the moment buffers when they are host memory; else stage on the host.
  const size_t n = opt.end() - opt.begin();
  HostStaged m(be, opt.exp_avg(), n, HostStaged::Mode::Write);
  HostStaged v(be, opt.exp_avg_sq(), n, HostStaged::Mode::Write);
  for (const auto& view : model.layout().views()) {
    size_t lo = 0, hi = 0;
    if (!view_range(view, opt.begin(), opt.end(), lo, hi)) continue;
    check_shape(reader, kRoleExpAvg, view);
    check_shape(reader, kRoleExpAvgSq, view);
    const int64_t a = static_cast<int64_t>(lo - view.flat_offset),
                  b = static_cast<int64_t>(hi - view.flat_offset);
    int64_t pos = static_cast<int64_t>(lo - opt.begin());
    for (const Rect& r : range_to_rects(view_rect(view), a, b)) {
      reader.read(kRoleExpAvg, view.name, r.offset, r.count, m.data() + pos);
      reader.read(kRoleExpAvgSq, view.name, r.offset, r.count, v.data() + pos);
      pos += r.numel();
    }
  }
  m.flush();
  v.flush();
}

}  // namespace shardlm
