// `shardlm plan`: which layouts of a model fit a cluster, how fast each runs, and the command
// for the best (plan/planner.h; docs/planner.md).
#include <cmath>
#include <filesystem>
#include <iostream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"
#include "model/family.h"
#include "plan/cpu_calibration.h"
#include "plan/plan_report.h"
#include "train/run_flags.h"

namespace shardlm::cli {
namespace {

// "80GiB", "24G", "1.5T", "512MiB", "1000000" (bytes): binary units with or without "i".
double parse_size(const std::string& text) {
  const auto unit_at = text.find_first_not_of("0123456789.");
  const double value = parse_double("--mem-per-device", text.substr(0, unit_at));
  const std::string unit = unit_at == std::string::npos ? "" : text.substr(unit_at);
  const double k = 1024.0;
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "K" || unit == "KiB") scale = k;
  if (unit == "M" || unit == "MiB") scale = k * k;
  if (unit == "G" || unit == "GiB") scale = k * k * k;
  if (unit == "T" || unit == "TiB") scale = k * k * k * k;
  if (scale == 0 || !(value > 0))
    throw UsageError("--mem-per-device: '" + text +
                     "' is not a size (a positive number with B, KiB, MiB, GiB or TiB)");
  return value * scale;
}

// "10mbit", "1.5gbit", "400kbit" (bits per second, decimal units, as `tc` writes rates) or a
// plain number of bytes per second: the inter-node link rate per rank.
double parse_rate(const std::string& text) {
  const auto unit_at = text.find_first_not_of("0123456789.e+");
  const std::string number = text.substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : text.substr(unit_at);
  double bytes_per_unit = 0;
  if (unit.empty()) bytes_per_unit = 1;
  if (unit == "kbit") bytes_per_unit = 1e3 / 8;
  if (unit == "mbit") bytes_per_unit = 1e6 / 8;
  if (unit == "gbit") bytes_per_unit = 1e9 / 8;
  double value = 0;
  try {
    value = parse_double("--inter-node-bw", number);
  } catch (const Error&) {
    // Reported below as a usage error naming the whole text.
  }
  if (bytes_per_unit == 0 || !(value > 0))
    throw UsageError("--inter-node-bw: '" + text +
                     "' is not a rate (bytes per second, or a number with kbit, mbit or gbit)");
  return value * bytes_per_unit;
}

// A preset name, or a `--config` file with its [model] section (a run's run_config.ini,
// `shardlm train --print-config` output).
ModelConfig load_model(const std::string& arg) {
  try {
    return model_preset_or_file(arg);
  } catch (const Error& e) {
    throw UsageError(std::string("--model: ") + e.what() + " (or give a config file)");
  }
}

// A file of shardlm train settings (not only a [model] section): the command then runs it as
// --config FILE, keeping its other settings.
bool is_train_config(const std::string& arg) {
  return std::filesystem::is_regular_file(arg) &&
         !parse_run_config_text(read_file(arg), arg).values.empty();
}

int cmd_plan(const std::vector<std::string>& args) {
  PlanRequest req;
  std::string device, mem, inter_bw;
  int top = 10;
  bool json = false, no_calibrate = false;
  po::options_description opts("Options");
  opts.add_options()("model", po::value(&req.model_arg)->required(),
                     "a preset (gpt2-xl, llama-3.2-1b, ...) or a config file with a [model] "
                     "section")("seq-len", po::value(&req.seq_len)->default_value(0),
                                "tokens per sequence (0: the model's max_seq_len)")(
      "global-batch", po::value(&req.global_batch)->required(), "sequences per optimizer step")(
      "nodes", po::value(&req.nodes)->default_value(1), "nodes")(
      "gpus-per-node", po::value(&req.gpus_per_node)->default_value(1),
      "ranks per node (GPUs, or MPI ranks for --device cpu)")(
      "device", po::value(&device)->default_value("cpu"),
      "a100, h100, h200, b200 or cpu (this machine)")(
      "mem-per-device", po::value(&mem),
      "memory each rank may use, e.g. 80GiB (default: the device's; cpu: this machine's "
      "available memory shared by its ranks)")(
      "inter-node-bw", po::value(&inter_bw),
      "bytes/s one rank sends to another node, or e.g. 10gbit (default: the device's)")(
      "top", po::value(&top)->default_value(10), "layouts to list")(
      "no-calibrate", po::bool_switch(&no_calibrate),
      "cpu: use the reference CPU's rates instead of timing the model's kernels here (about "
      "0.1-1 s)")("json", po::bool_switch(&json), "print the plan as JSON");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm plan --model PRESET|CONFIG --global-batch G [options]\n\n"
          "Enumerates the layouts (tp, pp, dp, ZeRO stage, recompute, micro-batch, stage split)\n"
          "of the model over nodes x ranks, predicts each rank's memory by role and the step\n"
          "time, drops what does not fit, ranks the rest and prints the command for the best.",
          opts, args, vm))
    return *rc;
  req.model = load_model(req.model_arg);
  req.model_is_config = is_train_config(req.model_arg);
  req.model.validate();
  if (req.seq_len == 0) req.seq_len = req.model.max_seq_len;
  if (req.seq_len < 1 || req.seq_len > req.model.max_seq_len)
    throw UsageError("--seq-len " + std::to_string(req.seq_len) + " must be in [1, max_seq_len " +
                     std::to_string(req.model.max_seq_len) + "]");
  if (req.global_batch < 1) throw UsageError("--global-batch must be >= 1");
  if (req.nodes < 1) throw UsageError("--nodes must be >= 1");
  if (req.gpus_per_node < 1) throw UsageError("--gpus-per-node must be >= 1");
  if (top < 0) throw UsageError("--top must be >= 0");
  req.device = device_spec(device);
  if (req.device.shared_by_node && !no_calibrate)
    apply_calibration(req.device, calibrate_cpu(req.model, req.seq_len,
                                                req.device.peak_flops / req.device.cores));
  if (vm.count("inter-node-bw")) req.device.inter_bw = parse_rate(inter_bw);
  req.mem_per_device = vm.count("mem-per-device")  ? parse_size(mem)
                       : req.device.shared_by_node ? req.device.memory_bytes / req.gpus_per_node
                                                   : req.device.memory_bytes;
  const Plan plan = make_plan(req);
  if (json)
    std::cout << plan_json(req, plan, top).dump(2) << "\n";
  else
    std::cout << plan_text(req, plan, top);
  return plan.ranked.empty() ? kExitError : kExitOk;
}

const CommandRegistrar reg("plan", "which layouts fit, how fast, and the command for the best",
                           cmd_plan);

}  // namespace
}  // namespace shardlm::cli
