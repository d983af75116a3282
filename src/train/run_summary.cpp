#include "train/run_summary.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "train/progress_printer.h"

namespace shardlm {

void RunSummary::step(const StepMetrics& m) {
  steps_ = m.step;
  tokens_ = m.tokens;
  mfu_sum_ += m.mfu;
  ++mfu_count_;
  peak_mem_bytes_ = std::max(peak_mem_bytes_, m.peak_mem_bytes);
}

void RunSummary::eval(int step, double val_loss, std::optional<double> val_bpb) {
  const double value = val_bpb ? *val_bpb : val_loss;
  if (best_ && !(value < *best_)) return;
  best_ = value;
  best_is_bpb_ = val_bpb.has_value();
  best_step_ = step;
}

std::string RunSummary::text(double seconds,
                             const std::optional<std::filesystem::path>& checkpoint) const {
  std::ostringstream os;
  os << "run summary: " << steps_ << " steps, " << tokens_ << " tokens in "
     << format_duration(seconds) << std::fixed << std::setprecision(4);
  if (best_)
    os << " | best " << (best_is_bpb_ ? "val bpb " : "val loss ") << *best_ << " (step "
       << best_step_ << ")";
  os << std::setprecision(1);
  if (mfu_count_ > 0) os << " | mean MFU " << 100 * mfu_sum_ / mfu_count_ << "%";
  if (peak_mem_bytes_ > 0)
    os << std::setprecision(2) << " | peak memory "
       << static_cast<double>(peak_mem_bytes_) / (1 << 30) << " GiB";
  os << " | newest checkpoint " << (checkpoint ? checkpoint->string() : std::string("none"))
     << "\n";
  return os.str();
}

}  // namespace shardlm
