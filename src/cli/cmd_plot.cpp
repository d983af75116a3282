// `shardlm plot RUN_DIR... [-o FILE.png] [--x tokens|steps|time]`: the runs' curves as a PNG.
// The plotting is scripts/plot_runs.py (matplotlib), which the build embeds in this binary, so
// the command works from the build folder, an install or a moved checkout alike. It runs
// under $SHARDLM_PLOT_PYTHON, else the python the build was configured with (Debian's
// /usr/bin/python3, where python3-matplotlib lives), else python3 on PATH.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "cli/plot_script.h"

namespace shardlm::cli {
namespace {

std::string plot_python() {
  if (const char* env = std::getenv("SHARDLM_PLOT_PYTHON"); env != nullptr && *env != '\0')
    return env;
  if (access(SHARDLM_PLOT_PYTHON, X_OK) == 0) return SHARDLM_PLOT_PYTHON;
  return "python3";
}

int cmd_plot(const std::vector<std::string>& args) {
  const std::string python = plot_python();
  // python -c SCRIPT ARGS...: the script sees ARGS as sys.argv[1:] (its argparse does --help).
  std::vector<char*> argv = {const_cast<char*>(python.c_str()), const_cast<char*>("-c"),
                             const_cast<char*>(kPlotScript)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  execvp(argv[0], argv.data());  // returns only on failure
  std::cerr << "shardlm plot: error: cannot run " << python << " (" << std::strerror(errno)
            << "): install python3 and python3-matplotlib (scripts/install-deps.sh), or set "
               "SHARDLM_PLOT_PYTHON to a python that has matplotlib\n";
  return kExitError;
}

const CommandRegistrar reg("plot", "plot the loss, throughput and MFU of runs (PNG)", cmd_plot);

}  // namespace
}  // namespace shardlm::cli
