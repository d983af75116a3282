#include "train/metrics_log.h"

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace {

// nlohmann::json holds a float as a double and would print its binary expansion
// (0.0006000000284984708); the float's own shortest decimal reads back as the same float.
double float_as_decimal(float x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf - 1, x);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

// The record's numbers (not its step, not the skipped flag) as TensorBoard scalars.
Scalars scalars_of(const nlohmann::ordered_json& record, bool eval) {
  Scalars out;
  for (const auto& [key, value] : record.items())
    if (key != "step" && value.is_number())
      out.emplace_back(tensorboard_tag(key, eval), value.get<double>());
  return out;
}

}  // namespace

std::string tensorboard_tag(const std::string& key, bool eval) {
  if (!eval) return "train/" + key;
  return "val/" + (key.rfind("val_", 0) == 0 ? key.substr(4) : key);
}

MetricsLog::MetricsLog(const std::filesystem::path& path,
                       const std::filesystem::path& tensorboard_dir)
    : path_(path), tensorboard_(path.empty() ? std::filesystem::path() : tensorboard_dir) {
  if (path.empty()) return;
  file_.open(path, std::ios::app);
  if (!file_) fail("cannot open metrics file " + path.string());
}

void MetricsLog::step(const StepMetrics& m) {
  // ordered_json: the keys stay in this order on every line.
  nlohmann::ordered_json j;
  j["step"] = m.step;
  j["loss"] = m.loss;
  j["lr"] = float_as_decimal(m.lr);
  j["grad_norm"] = m.grad_norm;
  j["tokens"] = m.tokens;
  j["tokens_per_s"] = m.tokens_per_s;
  j["mfu"] = m.mfu;
  j["elapsed_s"] = m.elapsed_s;
  j["compute_s"] = m.compute_s;
  j["comm_s"] = m.comm_s;
  j["bubble_s"] = m.bubble_s;
  j["cpu_s"] = m.cpu_s;
  j["peak_mem_bytes"] = m.peak_mem_bytes;
  if (m.skipped) j["skipped"] = true;
  if (!m.peak_alloc.empty()) {
    nlohmann::ordered_json total = nlohmann::ordered_json::array(), by_role;
    for (const MemoryTotals& t : m.peak_alloc) total.push_back(t.total);
    for (int r = 0; r < kMemoryRoles; ++r) {
      nlohmann::ordered_json per_rank = nlohmann::ordered_json::array();
      for (const MemoryTotals& t : m.peak_alloc)
        per_rank.push_back(t.of(static_cast<MemoryRole>(r)));
      by_role[memory_role_name(static_cast<MemoryRole>(r))] = per_rank;
    }
    j["peak_alloc_bytes"] = total;
    j["peak_alloc_bytes_by_role"] = by_role;
  }
  write(j.dump(), m.step, scalars_of(j, false));
}

void MetricsLog::eval(int step, double val_loss, std::optional<double> val_bpb) {
  nlohmann::ordered_json j;
  j["step"] = step;
  j["val_loss"] = val_loss;
  if (val_bpb) j["val_bpb"] = *val_bpb;
  write(j.dump(), step, scalars_of(j, true));
}

void MetricsLog::write(const std::string& line, int step, const Scalars& scalars) {
  if (!file_.is_open()) return;
  file_ << line << "\n" << std::flush;
  tensorboard_.scalars(step, scalars);
}

void MetricsLog::sync() {
  if (!file_.is_open()) return;
  fsync_path(path_);
  tensorboard_.sync();
}

}  // namespace shardlm
