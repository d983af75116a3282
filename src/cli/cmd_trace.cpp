// `shardlm trace merge`: the per-rank Chrome traces of a --trace-steps run as one timeline
// (train/trace_file.h, docs/observability.md).
#include <filesystem>
#include <iostream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "train/trace_file.h"

namespace shardlm::cli {
namespace {

namespace fs = std::filesystem;

int trace_merge(const std::vector<std::string>& args) {
  std::vector<std::string> inputs;
  std::string out;
  po::options_description opts("Options");
  opts.add_options()("output,o", po::value(&out),
                     "merged trace file (default: merged.json next to the first input's files)");
  po::options_description hidden;
  hidden.add_options()("inputs", po::value(&inputs)->multitoken(), "");
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm trace merge TRACE_DIR|RANK_FILE... [-o OUT.json]\n\nJoins the rank-*.json "
          "files that --trace-steps wrote into RUN_DIR/trace/ into one\ntimeline (one process "
          "per rank) that Perfetto (ui.perfetto.dev) and chrome://tracing open.",
          opts, hidden, positional, args, vm))
    return *rc;
  if (inputs.empty()) {
    std::cerr << "error: missing the TRACE_DIR argument (RUN_DIR/trace of a --trace-steps run)\n";
    return kExitUsage;
  }
  std::vector<fs::path> paths(inputs.begin(), inputs.end());
  const std::vector<fs::path> files = find_rank_traces(paths);
  const fs::path first = paths.front();
  const fs::path target =
      !out.empty() ? fs::path(out)
                   : (fs::is_directory(first) ? first : first.parent_path()) / "merged.json";
  const size_t events = merge_trace_files(files, target);
  std::cout << "merged " << files.size() << " rank trace(s), " << events
            << " events: " << target.string() << "\n";
  return kExitOk;
}

int cmd_trace(const std::vector<std::string>& args) {
  return run_subcommand(
      "trace", {{"merge", "join the per-rank traces of a run into one timeline", trace_merge}},
      args);
}

const CommandRegistrar reg("trace", "merge the per-rank traces of --trace-steps", cmd_trace);

}  // namespace
}  // namespace shardlm::cli
