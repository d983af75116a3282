// The human-readable side of `shardlm train`: rank 0's lines on stdout (the header with the
// effective config, a progress line every --log-every steps, evaluations, saves, the stop and
// the end). The numbers are MetricsLog's; these lines round them for reading.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "train/metrics_log.h"
#include "train/resolve_run_config.h"

namespace shardlm {

class ProgressPrinter {
 public:
  // Prints nothing unless enabled (rank 0).
  explicit ProgressPrinter(bool enabled) : enabled_(enabled) {}

  // "shardlm train: 4 ranks (dp 1 x tp 2 x pp 2), ..." and the effective config with its hash.
  void header(const ResolvedRun& run, const std::string& config_text) const;
  // "backend: cpu, ISA avx2, 2 OpenMP thread(s) per rank (...)": what this start runs on (not
  // part of the effective config: it may differ from node to node).
  void backend(const std::string& description) const;
  void resumed(const std::filesystem::path& checkpoint, int step,
               const std::string& saved_layout) const;
  // "step 10/500 | loss 5.1234 | lr 3.00e-03 | gnorm 0.812 | 51234 tok/s | mfu 41.0% | eta 2m3s"
  void step(const StepMetrics& m, int total_steps, bool clipped, double eta_s) const;
  void eval(int step, double val_loss, std::optional<double> val_bpb) const;
  void saved(const std::filesystem::path& checkpoint, double seconds) const;
  // --async-save: committed `seconds` after the save began, of which the training thread
  // spent `stalled` (snapshot, commit agreement, waiting for it).
  void saved_in_background(const std::filesystem::path& checkpoint, double seconds,
                           double stalled) const;
  void stopping(const std::string& reason, int step, int exit_code) const;
  void done(int steps, double seconds) const;
  // The end-of-start summary (train/run_summary.h makes the text).
  void summary(const std::string& text) const { print(text); }

 private:
  void print(const std::string& text) const;
  bool enabled_;
};

// "1h2m3s", "4m5s", "6s".
std::string format_duration(double seconds);

}  // namespace shardlm
