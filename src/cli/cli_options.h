// Shared command-line plumbing for the subcommands: Boost.Program_options parsing with --help
// at every level and usage errors for unknown options, and dispatch to sub-subcommands
// (`shardlm data prepare`, `shardlm tokenizer train`, ...).
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace shardlm::cli {

namespace po = boost::program_options;

// Parses `args` against `visible` (shown by --help, which is added here) and `hidden` (e.g. the
// targets of positional arguments). Returns the exit code to return right away: shardlm::kExitOk
// after printing help, shardlm::kExitUsage after printing a parse error (unknown option, missing
// required option, bad value) and the usage; std::nullopt when the command should run.
std::optional<int> parse_options(const std::string& usage, const po::options_description& visible,
                                 const po::options_description& hidden,
                                 const po::positional_options_description& positional,
                                 const std::vector<std::string>& args, po::variables_map& vm);

// Same without positional arguments.
std::optional<int> parse_options(const std::string& usage, const po::options_description& visible,
                                 const std::vector<std::string>& args, po::variables_map& vm);

// `shardlm <command> <subcommand> [options]`: runs the named subcommand with the remaining
// arguments; prints the list of subcommands for --help (exit 0) or for a missing or unknown
// one (exit shardlm::kExitUsage).
int run_subcommand(const std::string& command, const std::vector<Command>& subcommands,
                   const std::vector<std::string>& args);

}  // namespace shardlm::cli
