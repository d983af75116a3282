#include "cli/cli_options.h"

#include <algorithm>
#include <iostream>

namespace shardlm::cli {

std::optional<int> parse_options(const std::string& usage, const po::options_description& visible,
                                 const po::options_description& hidden,
                                 const po::positional_options_description& positional,
                                 const std::vector<std::string>& args, po::variables_map& vm) {
  po::options_description help("Help");
  help.add_options()("help,h", "print this help");
  po::options_description shown;
  if (!visible.options().empty()) shown.add(visible);
  shown.add(help);
  po::options_description all;
  all.add(shown).add(hidden);
  const auto print_usage = [&](std::ostream& os) { os << "usage: " << usage << "\n" << shown; };
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      print_usage(std::cout);
      return shardlm::kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n\n";
    print_usage(std::cerr);
    return shardlm::kExitUsage;
  }
  return std::nullopt;
}

std::optional<int> parse_options(const std::string& usage, const po::options_description& visible,
                                 const std::vector<std::string>& args, po::variables_map& vm) {
  return parse_options(usage, visible, po::options_description(),
                       po::positional_options_description(), args, vm);
}

int run_subcommand(const std::string& command, const std::vector<Command>& subcommands,
                   const std::vector<std::string>& args) {
  const auto print_list = [&](std::ostream& os) {
    os << "usage: shardlm " << command << " <subcommand> [options]    (shardlm " << command
       << " <subcommand> --help for its options)\n\nsubcommands:\n";
    for (const auto& s : subcommands)
      os << "  " << s.name << std::string(12 - std::min<size_t>(11, s.name.size()), ' ')
         << s.summary << "\n";
  };
  if (args.empty()) {
    print_list(std::cerr);
    return shardlm::kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_list(std::cout);
    return shardlm::kExitOk;
  }
  for (const auto& s : subcommands)
    if (s.name == args[0]) return s.run(std::vector<std::string>(args.begin() + 1, args.end()));
  std::cerr << "shardlm " << command << ": unknown subcommand '" << args[0] << "'\n\n";
  print_list(std::cerr);
  return shardlm::kExitUsage;
}

}  // namespace shardlm::cli
