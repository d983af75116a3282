// `shardlm train`: the settings of train/run_flags.h as flags and an optional config file
// (--config; the same names, `lr = 3e-4`; flags on the command line win) -> run_training, which
// resolves them (train/resolve_run_config.h) and trains. --print-config prints the effective
// config those settings give instead.
#include <cctype>
#include <iostream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/run_flags.h"
#include "train/train_run.h"

namespace shardlm::cli {
namespace {

// One --help section per group of run_flag_specs(), in the table's order. Every setting is
// taken as text: resolve_run_config parses and checks it, with the default it shows here.
std::vector<po::options_description> setting_options() {
  std::vector<po::options_description> groups;
  std::vector<std::string> names;
  for (const RunFlagSpec& spec : run_flag_specs()) {
    if (names.empty() || names.back() != spec.group) {
      std::string title = spec.group;
      title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
      groups.emplace_back(title);
      names.push_back(spec.group);
    }
    std::string help = spec.help;
    if (*spec.default_value) help += " [" + std::string(spec.default_value) + "]";
    auto* value = po::value<std::string>();
    if (spec.implicit_value) value->implicit_value(spec.implicit_value);
    groups.back().add_options()(spec.name, value, help.c_str());
  }
  return groups;
}

int cmd_train(const std::vector<std::string>& args) {
  po::options_description all;
  for (const auto& group : setting_options()) all.add(group);
  std::string config_file;
  bool print_config = false;
  bool print_binding = false;
  int world_size = 1;
  po::options_description actions("Config file and actions");
  actions.add_options()(
      "config", po::value(&config_file),
      "config file of `flag-name = value` lines (configs/*.ini, or a run's run_config.ini); "
      "flags on the command line win")(
      "print-config", po::bool_switch(&print_config),
      "print the effective config these settings give (run_config.ini's form) and exit without "
      "training or writing anything")("world-size", po::value(&world_size)->default_value(1),
                                      "with --print-config: resolve for a job of this many ranks")(
      "print-device-binding", po::bool_switch(&print_binding),
      "print the GPU each rank of this job would use with --device cuda (its node-local rank; "
      "SHARDLM_FAKE_CUDA_DEVICE_COUNT fakes the device count) and exit without training");
  all.add(actions);

  po::variables_map vm;
  const std::string usage =
      "shardlm train --out RUN_DIR [options]   (under mpirun for several ranks)";
  if (auto rc = parse_options(usage, all, args, vm)) return *rc;
  if (!vm["world-size"].defaulted() && !print_config)
    throw UsageError("--world-size goes with --print-config (a run takes its ranks from mpirun)");
  RunFlags flags = config_file.empty() ? RunFlags{} : read_run_config_file(config_file);
  for (const RunFlagSpec& spec : run_flag_specs())
    if (vm.count(spec.name)) flags.values[spec.name] = vm[spec.name].as<std::string>();
  if (print_binding) return print_device_binding();
  if (print_config) {
    std::cout << effective_config_text(flags, world_size);
    return kExitOk;
  }
  return run_training(flags);
}

CommandRegistrar reg("train", "train a model (single process or under mpirun)", cmd_train);

}  // namespace
}  // namespace shardlm::cli
