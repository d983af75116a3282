#include "convert/external_tensor.h"

#include "checkpoint/checkpoint.h"
#include "checkpoint/rect.h"
#include "core/error.h"

namespace shardlm {

namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The external 2-D view [rows, cols] of a tensor (a vector is one row).
void rows_cols(const ExternalTensor& t, int64_t& rows, int64_t& cols) {
  cols = t.shape.back();
  rows = numel(t.shape) / cols;
}

// pieces-order (shardlm) values -> external order, for the layouts that move elements.
void to_external(const ExternalTensor& t, const float* src, float* dst) {
  int64_t rows = 0, cols = 0;
  rows_cols(t, rows, cols);
  if (t.layout == ExternalLayout::kTransposed) {  // src [cols, rows], dst [rows, cols]
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = src[j * rows + i];
    return;
  }
  const int64_t hd = t.head_dim, half = hd / 2;
  for (int64_t head = 0; head < rows / hd; ++head)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j) {
        const float* from = src + (head * hd + i * half + j) * cols;
        std::copy(from, from + cols, dst + (head * hd + 2 * j + i) * cols);
      }
}

void from_external(const ExternalTensor& t, const float* src, float* dst) {
  int64_t rows = 0, cols = 0;
  rows_cols(t, rows, cols);
  if (t.layout == ExternalLayout::kTransposed) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) dst[j * rows + i] = src[i * cols + j];
    return;
  }
  const int64_t hd = t.head_dim, half = hd / 2;
  for (int64_t head = 0; head < rows / hd; ++head)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j) {
        const float* from = src + (head * hd + 2 * j + i) * cols;
        std::copy(from, from + cols, dst + (head * hd + i * half + j) * cols);
      }
}

void check_source(CheckpointReader& reader, const ExternalTensor& t) {
  if (!reader.has_tensor(kRoleParam, t.source))
    fail("checkpoint " + reader.dir().string() + " has no tensor '" + t.source + "' (needed for " +
         t.name + ")");
  const auto& shape = reader.global_shape(kRoleParam, t.source);
  for (const ExternalPiece& p : t.pieces) {
    bool inside = p.offset.size() == shape.size();
    for (size_t d = 0; inside && d < shape.size(); ++d)
      inside = p.offset[d] >= 0 && p.offset[d] + p.count[d] <= shape[d];
    if (!inside)
      fail("checkpoint " + reader.dir().string() + ": tensor '" + t.source + "' has shape " +
           shape_string(shape) + ", which does not hold " + t.name + " " + shape_string(t.shape) +
           " as its config says");
  }
}

}  // namespace

int64_t external_numel(const ExternalTensor& t) {
  return numel(t.shape);
}

void read_external(CheckpointReader& reader, const ExternalTensor& t,
                   const std::function<void(const float*, int64_t)>& sink) {
  check_source(reader, t);
  std::vector<float> buffer;
  if (t.layout == ExternalLayout::kSame) {
    const int64_t cols = t.shape.back();
    const int64_t block = std::max(cols, kConvertBlockElements / cols * cols);
    for (const ExternalPiece& p : t.pieces)
      for_each_block(Rect{p.offset, p.count}, block, [&](const Rect& b) {
        buffer.resize(static_cast<size_t>(b.numel()));
        reader.read(kRoleParam, t.source, b.offset, b.count, buffer.data());
        sink(buffer.data(), b.numel());
      });
    return;
  }
  buffer.resize(static_cast<size_t>(external_numel(t)));
  int64_t at = 0;
  for (const ExternalPiece& p : t.pieces) {
    reader.read(kRoleParam, t.source, p.offset, p.count, buffer.data() + at);
    at += Rect{p.offset, p.count}.numel();
  }
  std::vector<float> out(buffer.size());
  to_external(t, buffer.data(), out.data());
  sink(out.data(), external_numel(t));
}

void external_to_piece_order(const ExternalTensor& t, const float* external, float* pieces) {
  if (t.layout == ExternalLayout::kSame)
    std::copy(external, external + external_numel(t), pieces);
  else
    from_external(t, external, pieces);
}

}  // namespace shardlm
