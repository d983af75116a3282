// `shardlm <command> [options]`: dispatches to the registered subcommands (see commands.h).
#include <algorithm>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "kernels/cpu/wait_policy.h"

namespace shardlm::cli {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace shardlm::cli

namespace {
void print_usage(std::ostream& os) {
  auto commands = shardlm::cli::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  os << "usage: shardlm <command> [options]    (shardlm <command> --help for its "
        "options)\n\ncommands:\n";
  for (const auto& c : commands)
    os << "  " << c.name << std::string(12 - std::min<size_t>(11, c.name.size()), ' ') << c.summary
       << "\n";
}
}  // namespace

int main(int argc, char** argv) {
  using namespace shardlm::cli;
  // First of all: libgomp has read its environment already, MPI has not started.
  shardlm::cpu::restart_with_passive_wait_if_node_shared(argv);
  if (argc < 2) {
    print_usage(std::cerr);
    return shardlm::kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return shardlm::kExitOk;
  }
  for (const auto& c : command_registry()) {
    if (c.name != name) continue;
    try {
      return c.run(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const shardlm::UsageError& e) {
      std::cerr << "shardlm " << name << ": error: " << e.what() << std::endl;
      return shardlm::kExitUsage;
    } catch (const std::exception& e) {
      std::cerr << "shardlm " << name << ": error: " << e.what() << std::endl;
      return shardlm::kExitError;
    }
  }
  std::cerr << "shardlm: unknown command '" << name << "'\n\n";
  print_usage(std::cerr);
  return shardlm::kExitUsage;
}
