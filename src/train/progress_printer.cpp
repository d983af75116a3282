#include "train/progress_printer.h"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "core/hash.h"

namespace shardlm {

std::string format_duration(double s) {
  const long t = std::lround(std::max(0.0, s));
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << "h";
  if (t >= 60) os << (t % 3600) / 60 << "m";
  os << t % 60 << "s";
  return os.str();
}

void ProgressPrinter::print(const std::string& text) const {
  if (enabled_) std::cout << text << std::flush;
}

void ProgressPrinter::header(const ResolvedRun& run, const std::string& config_text) const {
  const RunConfig& c = run.config;
  const MeshShape& m = run.mesh;
  std::ostringstream os;
  os << "shardlm train: " << m.world_size() << " ranks (dp " << m.dp << " x tp " << m.tp << " x pp "
     << m.pp << (c.zero ? ", ZeRO-" + std::to_string(c.zero) : std::string()) << "), "
     << c.model.num_parameters() / 1e6 << "M parameters, " << run.train.micro_batches
     << " micro-batch(es) of " << c.micro_batch << " x " << c.seq_len
     << " per DP rank per step\n--- effective config (hash " << std::hex << std::setw(16)
     << std::setfill('0') << fnv1a64(config_text) << std::dec << ") ---\n"
     << config_text << "------------------------\n";
  print(os.str());
}

void ProgressPrinter::backend(const std::string& description) const {
  print("backend: " + description + "\n");
}

void ProgressPrinter::resumed(const std::filesystem::path& checkpoint, int step,
                              const std::string& saved_layout) const {
  print("resumed from " + checkpoint.string() + " at step " + std::to_string(step) +
        " (saved with " + saved_layout + ")\n");
}

void ProgressPrinter::step(const StepMetrics& m, int total_steps, bool clipped,
                           double eta_s) const {
  std::ostringstream os;
  os << "step " << m.step << "/" << total_steps << " | loss " << std::fixed << std::setprecision(4)
     << m.loss << " | lr " << std::scientific << std::setprecision(2) << m.lr << " | gnorm "
     << std::fixed << std::setprecision(3) << m.grad_norm << (clipped ? " (clipped)" : "") << " | "
     << std::setprecision(0) << m.tokens_per_s << " tok/s | mfu " << std::setprecision(1)
     << 100 * m.mfu << "% | eta " << format_duration(eta_s)
     << (m.skipped ? " | SKIPPED (non-finite)" : "") << "\n";
  print(os.str());
}

void ProgressPrinter::eval(int step, double val_loss, std::optional<double> val_bpb) const {
  std::ostringstream os;
  os << "eval step " << step << " | val loss " << std::fixed << std::setprecision(4) << val_loss;
  if (val_bpb) os << " | val bpb " << *val_bpb;
  os << "\n";
  print(os.str());
}

void ProgressPrinter::saved(const std::filesystem::path& checkpoint, double seconds) const {
  std::ostringstream os;
  os << "saved " << checkpoint.string() << " (" << std::fixed << std::setprecision(2) << seconds
     << " s)\n";
  print(os.str());
}

void ProgressPrinter::saved_in_background(const std::filesystem::path& checkpoint, double seconds,
                                          double stalled) const {
  std::ostringstream os;
  os << "saved " << checkpoint.string() << " (" << std::fixed << std::setprecision(2) << seconds
     << " s in the background; training stalled " << std::setprecision(3) << stalled << " s)\n";
  print(os.str());
}

void ProgressPrinter::stopping(const std::string& reason, int step, int exit_code) const {
  print("stop requested (" + reason + ") at step " + std::to_string(step) +
        ": saving and exiting with " + std::to_string(exit_code) + "\n");
}

void ProgressPrinter::done(int steps, double seconds) const {
  print("done: " + std::to_string(steps) + " steps in " + format_duration(seconds) + "\n");
}

}  // namespace shardlm
