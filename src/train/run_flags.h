// The settings of `shardlm train` by name: the one config dialect. A setting's name is its long
// flag (`--lr`), and a config file (--config FILE, and the run_config.ini every run writes) is
// `flag-name = value` lines, so what a run writes is what it reads back. The table below is
// shared by the command line (cli/cmd_train.cpp builds its options from it),
// resolve_run_config (defaults and checks) and RunConfig::to_ini (the effective config).
//
// Config file syntax: `name = value` per line; `#` starts a comment; blank lines are ignored;
// each name at most once. One section may follow the settings: [model], the model a run
// resolved to, in the form checkpoints record it (model_config_to_ini). It is a record, not a
// second way of choosing the model: resolve_run_config refuses settings that give another one.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace shardlm {

struct RunFlagSpec {
  const char* name;           // the long flag without "--", and the config-file key
  const char* group;          // the --help section, and run_config.ini's comment heading
  const char* default_value;  // as text; "" where resolve_run_config derives it (see help)
  const char* help;
  // Part of the effective config (run_config.ini, checkpoints, the cross-rank hash). False for
  // what only concerns this start: where it runs and writes, whether and how long it resumes.
  bool recorded;
  // The value a bare `--name` means (e.g. "on" for --async-save); nullptr: a value is required.
  const char* implicit_value = nullptr;
};

// Every setting, in --help and run_config.ini order.
const std::vector<RunFlagSpec>& run_flag_specs();
// The spec named `name`; nullptr for a name that is not a setting.
const RunFlagSpec* find_run_flag(std::string_view name);

// What a `shardlm train` was told: setting name -> value text (only the settings given; the
// command line over the config file), and the [model] record of the config file, if any.
struct RunFlags {
  std::map<std::string, std::string> values;
  std::optional<ModelConfig> recorded_model;
  std::string recorded_in;  // the config file that carried recorded_model (for messages)
};

// Parses config-file text (`source` names it in messages). Throws UsageError naming the source,
// the line and the key for unknown settings, repeated ones, lines that are not `name = value`,
// other sections and an invalid [model] section.
RunFlags parse_run_config_text(const std::string& text, const std::string& source);
// The same for a file; throws UsageError naming --config and the path when it cannot be read.
RunFlags read_run_config_file(const std::filesystem::path& path);

}  // namespace shardlm
