#include "convert/import_slices.h"

#include <algorithm>
#include <memory>

#include "checkpoint/rect.h"
#include "convert/external_tensor.h"

namespace shardlm {

namespace {

// Reads a tensor whose layout moves elements once, in piece order, for all its slices; freed
// after the last element of its last piece was handed out.
class WholeTensor {
 public:
  WholeTensor(const ExternalTensor& t, const SafetensorsReader& file, const SafetensorsEntry& e)
      : t_(t), file_(file), entry_(e) {}

  void copy(int64_t at, int64_t n, float* out) {
    if (pieces_.empty()) {
      std::vector<float> external(static_cast<size_t>(entry_.numel()));
      file_.read(entry_, 0, entry_.numel(), external.data());
      pieces_.resize(external.size());
      external_to_piece_order(t_, external.data(), pieces_.data());
    }
    std::copy(pieces_.data() + at, pieces_.data() + at + n, out);
    if (at + n == static_cast<int64_t>(pieces_.size())) std::vector<float>().swap(pieces_);
  }

 private:
  const ExternalTensor t_;
  const SafetensorsReader& file_;
  const SafetensorsEntry& entry_;
  std::vector<float> pieces_;
};

}  // namespace

void add_streamed_slices(const ExternalTensor& t, const SafetensorsReader& file,
                         const SafetensorsEntry& entry, const std::vector<int64_t>& source_shape,
                         std::vector<SourcedSlice>& slices) {
  std::shared_ptr<WholeTensor> whole;
  if (t.layout != ExternalLayout::kSame) whole = std::make_shared<WholeTensor>(t, file, entry);
  int64_t start = 0;  // the piece's first element in the external (kSame) or piece order
  for (const ExternalPiece& p : t.pieces) {
    SourcedSlice s{{kRoleParam, t.source, source_shape, p.offset, p.count, nullptr, DType::F32},
                   {}};
    if (whole)
      s.source = [whole, start](int64_t first, int64_t n, void* out) {
        whole->copy(start + first, n, static_cast<float*>(out));
      };
    else
      s.source = [&file, &entry, start](int64_t first, int64_t n, void* out) {
        file.read(entry, start + first, n, static_cast<float*>(out));
      };
    slices.push_back(std::move(s));
    start += Rect{p.offset, p.count}.numel();
  }
}

void add_zero_slices(const std::string& name, const std::vector<int64_t>& shape,
                     std::vector<SourcedSlice>& slices) {
  std::vector<Rect> uncovered = {Rect{std::vector<int64_t>(shape.size(), 0), shape}};
  for (const SourcedSlice& s : slices) {
    if (s.slice.name != name) continue;
    std::vector<Rect> rest;
    for (const Rect& r : uncovered)
      for (Rect& part : subtract(r, Rect{s.slice.offset, s.slice.count}))
        rest.push_back(std::move(part));
    uncovered = std::move(rest);
  }
  for (const Rect& r : uncovered) {
    if (r.numel() == 0) continue;
    slices.push_back(
        {{kRoleParam, name, shape, r.offset, r.count, nullptr, DType::F32},
         [](int64_t, int64_t n, void* out) { std::fill_n(static_cast<float*>(out), n, 0.0f); }});
  }
}

}  // namespace shardlm
