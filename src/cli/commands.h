// Subcommand registry for the `shardlm` binary. Each src/cli/cmd_<name>.cpp registers itself:
//
//   static CommandRegistrar reg("train", "train a model", cmd_train);
//
// A command gets its own arguments (argv after the subcommand name) and returns the process
// exit code. Errors are thrown as shardlm::Error; main() prints them and exits non-zero.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/exit_codes.h"

namespace shardlm::cli {

using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string name;
  std::string summary;
  CommandFn run;
};

std::vector<Command>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, CommandFn fn) {
    command_registry().push_back({std::move(name), std::move(summary), std::move(fn)});
  }
};

}  // namespace shardlm::cli
