// From what `shardlm train` was told (train/run_flags.h) and a few facts about where it runs to
// the final RunConfig and TrainSettings. The only place for the settings' defaults and the
// checks of their values and combinations; pure (no files, no MPI), so every default and every
// refusal is unit-tested (tests/unit/test_run_config.cpp). Every rank resolves the same inputs
// alike, so a refusal happens on every rank before anything collective.
#pragma once

#include <optional>
#include <string>

#include "parallel/mesh.h"
#include "train/run_config.h"
#include "train/run_flags.h"
#include "train/trainer.h"

namespace shardlm {

struct RunFacts {
  int world_size = 1;                  // ranks in the job
  std::optional<int> tokenizer_vocab;  // the --data dataset's tokenizer size (unset: synthetic)
  std::string tokenizer_path;          // where it was read (for messages)
};

struct ResolvedRun {
  RunConfig config;
  TrainSettings train;  // what the Trainer gets (micro-batches per step derived)
  MeshShape mesh;       // dp = world_size / (tp x pp)
};

// Throws UsageError naming the flag and the value for anything it refuses: values that do not
// parse or are out of range, contradictory flags, a missing --out, a batch or layout that does
// not divide (validate_layout's rules included), a vocabulary smaller than the tokenizer's, and
// settings that give another model than a config file's [model] record.
ResolvedRun resolve_run_config(const RunFlags& flags, const RunFacts& facts);

// The --data value with its default applied: where the caller reads the tokenizer that
// RunFacts::tokenizer_vocab reports ("synthetic" needs none).
std::string data_setting(const RunFlags& flags);
constexpr const char* kSyntheticData = "synthetic";

}  // namespace shardlm
