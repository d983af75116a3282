#include "train/run_flags.h"

#include <sstream>

#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace {
constexpr const char* kModel = "model";
constexpr const char* kData = "data and batch";
constexpr const char* kOptim = "optimizer";
constexpr const char* kParallel = "parallelism";
constexpr const char* kRun = "run directory, checkpoints, logging";
}  // namespace

const std::vector<RunFlagSpec>& run_flag_specs() {
  static const std::vector<RunFlagSpec> specs = {
      {"model", kModel, "tiny",
       "preset of any family, e.g. tiny, mini, gpt2 (GPT-2) or llama-tiny, llama-3-8b (Llama), "
       "or a file with a [model] section (a run's run_config.ini, --print-config output; what "
       "shardlm plan --model takes); an unknown name is refused with the list of all",
       true},
      {"n-layer", kModel, "", "number of blocks (default: the preset's)", true},
      {"n-head", kModel, "", "attention heads (default: the preset's)", true},
      {"n-embd", kModel, "", "embedding width (default: the preset's)", true},
      {"vocab-size", kModel, "",
       "vocabulary (default: the tokenizer's with --data DIR, the preset's with synthetic data)",
       true},
      {"max-seq-len", kModel, "", "position table length (default: the preset's)", true},

      {"data", kData, "synthetic",
       "prepared dataset directory (shardlm data prepare), or 'synthetic' (seeded random tokens)",
       true},
      {"seq-len", kData, "0", "tokens per sequence (0: the model's max-seq-len)", true},
      {"micro-batch", kData, "4", "sequences per micro-batch per DP rank", true},
      {"global-batch", kData, "0",
       "sequences per optimizer step over all DP ranks (0: micro-batch x dp); gradient "
       "accumulation = global / (micro x dp)",
       true},
      // Recorded as the global-batch it gives.
      {"global-batch-tokens", kData, "0",
       "the same in tokens (a multiple of seq-len; 0: use --global-batch); exclusive with "
       "--global-batch",
       false},
      {"steps", kData, "100", "optimizer steps", true},
      {"seed", kData, "1337", "initialisation and data-order seed", true},

      {"lr", kOptim, "6e-4", "peak learning rate", true},
      {"min-lr", kOptim, "6e-5", "floor of the cosine decay", true},
      {"warmup", kOptim, "0", "linear warm-up steps", true},
      {"weight-decay", kOptim, "0.1", "AdamW decoupled weight decay (matrices and embeddings only)",
       true},
      {"grad-clip", kOptim, "1.0", "global gradient-norm clip (0: off)", true},
      {"beta1", kOptim, "0.9", "AdamW beta1", true},
      {"beta2", kOptim, "0.95", "AdamW beta2", true},
      {"eps", kOptim, "1e-8", "AdamW epsilon", true},
      {"on-nan", kOptim, "error",
       "non-finite loss/gradients: 'error' (stop, naming the step) or 'skip' (skip the update)",
       true},

      {"tp", kParallel, "1", "tensor-parallel ranks (within a node)", true},
      {"pp", kParallel, "1", "pipeline stages; dp = world / (tp x pp)", true},
      {"pp-layers", kParallel, "", "blocks per pipeline stage, e.g. 3,3,2 (default: even split)",
       true},
      {"zero", kParallel, "0",
       "shard over DP: 1 AdamW state (ZeRO-1), 2 + gradients (ZeRO-2), 3 + parameters (ZeRO-3)",
       true},
      {"recompute", kParallel, "none",
       "activation recomputation: none, selective (attention internals, MLP nonlinearity) or "
       "full (keep only block inputs)",
       true},
      {"device", kParallel, "cpu",
       "kernel backend: cpu, or cuda (one GPU, a single rank, until the NCCL communicator lands)",
       true},

      {"out", kRun, "",
       "run directory (checkpoints/, metrics.jsonl, run_config.ini, progress/); "
       "required",
       false},
      {"metrics", kRun, "", "JSON Lines metrics file (default: <out>/metrics.jsonl)", false},
      {"save-every", kRun, "0", "save a checkpoint every N steps (and always at the end)", true},
      {"keep-last", kRun, "3", "checkpoints to keep", true},
      {"keep-every", kRun, "0", "also keep every checkpoint whose step is a multiple of N", true},
      // Not recorded: the checkpoints are the same bit for bit either way.
      {"async-save", kRun, "off",
       "on (a bare --async-save): snapshot the state to host memory and write each checkpoint "
       "on a background thread while training continues (same commit protocol; one save in "
       "flight, the next waits; the snapshot doubles the state's host memory); off: training "
       "waits for each save",
       false, "on"},
      {"resume", kRun, "auto",
       "'auto' (newest committed checkpoint in <out>), 'none', or a checkpoint directory", false},
      {"init-from", kRun, "",
       "a checkpoint whose parameters start this run (step 0, fresh optimizer; any layout, the "
       "same model), e.g. one `shardlm convert --from hf` made; ignored once the run has its "
       "own checkpoint to resume",
       false},
      {"threads", kRun, "0",
       "OpenMP threads per rank on the CPU (0: OMP_NUM_THREADS if set, else the node's CPUs "
       "divided among its ranks)",
       false},
      {"exit-after-minutes", kRun, "0",
       "save and exit with code 75 after this much wall-clock time (0: no limit)", false},
      {"eval-every", kRun, "0", "validation every N steps (always at start and end)", true},
      {"eval-steps", kRun, "4", "validation batches per evaluation", true},
      {"log-every", kRun, "1", "progress line every N steps", true},
      {"tensorboard", kRun, "on",
       "'on': TensorBoard event files in <out>/tensorboard/ (the metrics.jsonl scalars); 'off'",
       false},
      {"trace-steps", kRun, "",
       "A:B: a Chrome trace per rank of steps A..B (1-based) into <out>/trace/ (join them with "
       "shardlm trace merge; open in Perfetto)",
       false},
      {"memory-check", kRun, "on",
       "on: refuse a run whose predicted peak memory per rank exceeds what its device or node "
       "has free (docs/planner.md); off: start anyway",
       false},
      {"peak-tflops", kRun, "0",
       "per-rank peak for MFU, e.g. the GPU's (0: the node's CPUs x one core's fp32 FMA peak "
       "at the running ISA level, measured at start, shared by the ranks on the node)",
       true},
  };
  return specs;
}

const RunFlagSpec* find_run_flag(std::string_view name) {
  for (const RunFlagSpec& spec : run_flag_specs())
    if (name == spec.name) return &spec;
  return nullptr;
}

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

}  // namespace

RunFlags parse_run_config_text(const std::string& text, const std::string& source) {
  RunFlags flags;
  std::map<std::string, int> line_of;  // setting -> the line that set it
  std::istringstream in(text);
  std::string raw, section;
  bool has_model_section = false;
  for (int line_no = 1; std::getline(in, raw); ++line_no) {
    const std::string where = source + ":" + std::to_string(line_no) + ": ";
    const std::string line = trim(raw.substr(0, raw.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = trim(line.substr(1, line.find(']') - 1));
      if (line.back() != ']' || section != "model")
        throw UsageError(where + "unexpected section " + line +
                         ": settings are `flag-name = value` lines (e.g. `lr = 3e-4`), and the "
                         "only section is [model], the model a run_config.ini records");
      has_model_section = true;
      continue;
    }
    if (section == "model") continue;  // read as a whole by model_config_from_ini below
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      throw UsageError(where + "expected `flag-name = value`, got '" + line + "'");
    const std::string name = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (find_run_flag(name) == nullptr)
      throw UsageError(where + "unknown setting '" + name +
                       "' (settings are shardlm train's long flag names: see shardlm train "
                       "--help)");
    if (const auto it = line_of.find(name); it != line_of.end())
      throw UsageError(where + "'" + name + "' is set twice (first on line " +
                       std::to_string(it->second) + ")");
    line_of[name] = line_no;
    flags.values[name] = value;
  }
  if (has_model_section) {
    try {
      flags.recorded_model = model_config_from_ini(text);
    } catch (const Error& e) {
      throw UsageError(source + ": " + e.what());
    }
    flags.recorded_in = source;
  }
  return flags;
}

RunFlags read_run_config_file(const std::filesystem::path& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw UsageError(std::string("--config: ") + e.what());
  }
  return parse_run_config_text(text, "--config " + path.string());
}

}  // namespace shardlm
