// `shardlm ckpt verify|inspect|consolidate`: offline tools for sharded checkpoints
// (checkpoint/checkpoint.h, docs/checkpoint-format.md).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"

namespace shardlm::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDirHelp =
    "a checkpoint directory (step_XXXXXXXX), or a run directory or checkpoint root: then its "
    "newest committed checkpoint";

// resolve_checkpoint, saying which checkpoint a run directory or root stands for.
fs::path resolve_and_report(const fs::path& path) {
  const fs::path resolved = resolve_checkpoint(path);
  if (resolved != path)
    std::cerr << "using the latest checkpoint under " << path.string() << ": " << resolved.string()
              << "\n";
  return resolved;
}

// Parses `shardlm ckpt <name> DIR [OUT.h5]`: exactly `names.size()` positional arguments.
std::optional<int> parse_paths(const std::string& usage, const std::vector<std::string>& args,
                               const std::vector<std::string>& names,
                               std::vector<std::string>& values) {
  po::options_description visible("Options"), hidden;
  po::positional_options_description positional;
  values.assign(names.size(), "");
  for (size_t i = 0; i < names.size(); ++i) {
    hidden.add_options()(names[i].c_str(), po::value(&values[i]), "");
    positional.add(names[i].c_str(), 1);
  }
  po::variables_map vm;
  if (auto rc = parse_options(usage, visible, hidden, positional, args, vm)) return rc;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!values[i].empty()) continue;
    std::cerr << "error: missing the " << names[i] << " argument\n\nusage: " << usage << "\n";
    return shardlm::kExitUsage;
  }
  return std::nullopt;
}

int ckpt_verify(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  if (auto rc = parse_paths(
          std::string("shardlm ckpt verify DIR\n\nChecks the manifest, that every tensor is fully "
                      "stored, and every stored rectangle's CRC32C.\nDIR: ") +
              kDirHelp,
          args, {"DIR"}, paths))
    return *rc;
  const fs::path dir = resolve_and_report(paths[0]);
  const VerifyReport report = verify_checkpoint(dir);
  std::printf("OK %s: %d files, %lld tensors in %lld slices, %.1f MiB of tensor data checked\n",
              dir.c_str(), report.files, static_cast<long long>(report.tensors),
              static_cast<long long>(report.slices), static_cast<double>(report.bytes) / (1 << 20));
  return shardlm::kExitOk;
}

int ckpt_inspect(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  if (auto rc = parse_paths(
          std::string(
              "shardlm ckpt inspect DIR\n\nPrints the step, metadata, every tensor with its "
              "global shape and size, and the config.\nDIR: ") +
              kDirHelp,
          args, {"DIR"}, paths))
    return *rc;
  std::cout << describe_checkpoint(resolve_and_report(paths[0]));
  return shardlm::kExitOk;
}

int ckpt_consolidate(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  if (auto rc = parse_paths(
          std::string("shardlm ckpt consolidate DIR OUT.h5\n\nWrites one HDF5 file with the full "
                      "tensors /<role>/<name> and the metadata.\nDIR: ") +
              kDirHelp,
          args, {"DIR", "OUT.h5"}, paths))
    return *rc;
  const fs::path dir = resolve_and_report(paths[0]);
  consolidate_checkpoint(dir, paths[1]);
  std::printf("wrote %s from %s\n", paths[1].c_str(), dir.c_str());
  return shardlm::kExitOk;
}

int cmd_ckpt(const std::vector<std::string>& args) {
  return run_subcommand(
      "ckpt",
      {{"verify", "check every tensor of a checkpoint against its checksum", ckpt_verify},
       {"inspect", "print a checkpoint's step, metadata, tensors and config", ckpt_inspect},
       {"consolidate", "write the full tensors into one HDF5 file", ckpt_consolidate}},
      args);
}

const CommandRegistrar reg("ckpt", "verify, inspect and consolidate sharded checkpoints", cmd_ckpt);

}  // namespace
}  // namespace shardlm::cli
