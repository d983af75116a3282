// `shardlm train`: flags and an optional config file (--config; keys are the flags' long
// names, e.g. `lr = 3e-4`; flags given on the command line win) -> RunConfig -> run_training.
#include <iostream>
#include <sstream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"
#include "model/config.h"
#include "train/train_run.h"

namespace shardlm::cli {
namespace {

int cmd_train(const std::vector<std::string>& args) {
  RunConfig c;
  std::string config_file, pp_layers, on_nan = "error";
  int n_layer = 0, n_head = 0, n_embd = 0, vocab_size = 0, max_seq_len = 0;
  int64_t global_batch_tokens = 0;
  po::options_description model("Model");
  model.add_options()("model", po::value(&c.model_preset)->default_value("tiny"),
                      "preset: tiny, mini, gpt2, gpt2-medium, gpt2-large, gpt2-xl")(
      "n-layer", po::value(&n_layer), "override the preset's number of blocks")(
      "n-head", po::value(&n_head), "override the number of attention heads")(
      "n-embd", po::value(&n_embd), "override the embedding width")(
      "vocab-size", po::value(&vocab_size),
      "override the vocabulary (default: the tokenizer's, or the preset's with synthetic data)")(
      "max-seq-len", po::value(&max_seq_len), "override the position table length");
  po::options_description data("Data and batch");
  data.add_options()("data", po::value(&c.data)->default_value("synthetic"),
                     "prepared dataset directory (shardlm data prepare), or 'synthetic'")(
      "seq-len", po::value(&c.seq_len)->default_value(0),
      "tokens per sequence (0: the model's max_seq_len)")(
      "micro-batch", po::value(&c.micro_batch)->default_value(4),
      "sequences per micro-batch per DP rank")(
      "global-batch", po::value(&c.global_batch)->default_value(0),
      "sequences per optimizer step over all DP ranks (0: micro-batch x dp); gradient accumulation "
      "= global / (micro x dp)")(
      "global-batch-tokens", po::value(&global_batch_tokens)->default_value(0),
      "the same in tokens (a multiple of seq-len); exclusive with --global-batch")(
      "steps", po::value(&c.steps)->default_value(100), "optimizer steps")(
      "seed", po::value(&c.seed)->default_value(1337), "initialisation and data-order seed");
  po::options_description optim("Optimizer");
  optim.add_options()("lr", po::value(&c.optim.lr)->default_value(6e-4f, "6e-4"),
                      "peak learning rate")(
      "min-lr", po::value(&c.optim.min_lr)->default_value(6e-5f, "6e-5"),
      "floor of the cosine decay")("warmup", po::value(&c.optim.warmup_steps)->default_value(0),
                                   "linear warm-up steps")(
      "weight-decay", po::value(&c.optim.weight_decay)->default_value(0.1f, "0.1"),
      "AdamW decoupled weight decay (matrices and embeddings only)")(
      "grad-clip", po::value(&c.optim.grad_clip)->default_value(1.0f, "1.0"),
      "global gradient-norm clip (0: off)")(
      "beta1", po::value(&c.optim.beta1)->default_value(0.9f, "0.9"), "AdamW beta1")(
      "beta2", po::value(&c.optim.beta2)->default_value(0.95f, "0.95"), "AdamW beta2")(
      "eps", po::value(&c.optim.eps)->default_value(1e-8f, "1e-8"), "AdamW epsilon")(
      "on-nan", po::value(&on_nan)->default_value("error"),
      "non-finite loss/gradients: 'error' (stop, naming the step) or 'skip' (skip the update)");
  po::options_description par("Parallelism");
  par.add_options()("tp", po::value(&c.tp)->default_value(1),
                    "tensor-parallel ranks (within a node)")(
      "pp", po::value(&c.pp)->default_value(1), "pipeline stages; dp = world / (tp x pp)")(
      "pp-layers", po::value(&pp_layers),
      "blocks per pipeline stage, e.g. 3,3,2 (default: even split)")(
      "zero", po::value(&c.zero)->default_value(0), "1: shard AdamW state over DP (ZeRO-1)")(
      "device", po::value(&c.device)->default_value("cpu"),
      "kernel backend: cpu, or cuda (one GPU, a single rank, until the NCCL communicator lands)");
  po::options_description run("Run directory, checkpoints, logging");
  run.add_options()("config", po::value(&config_file),
                    "config file: `flag-name = value` lines (flags on the command line win)")(
      "out", po::value(&c.out)->required(),
      "run directory (checkpoints/, metrics.jsonl, run_config.ini, progress/)")(
      "metrics", po::value(&c.metrics), "JSON Lines metrics file (default: <out>/metrics.jsonl)")(
      "save-every", po::value(&c.save_every)->default_value(0),
      "save a checkpoint every N steps (and always at the end)")(
      "keep-last", po::value(&c.keep_last)->default_value(3), "checkpoints to keep")(
      "keep-every", po::value(&c.keep_every)->default_value(0),
      "also keep every checkpoint whose step is a multiple of N")(
      "resume", po::value(&c.resume)->default_value("auto"),
      "'auto' (newest committed checkpoint in <out>), 'none', or a checkpoint directory")(
      "exit-after-minutes", po::value(&c.exit_after_minutes)->default_value(0),
      "save and exit with code 75 after this much wall-clock time")(
      "eval-every", po::value(&c.eval_every)->default_value(0),
      "validation every N steps (always at start and end)")(
      "eval-steps", po::value(&c.eval_steps)->default_value(4),
      "validation batches per evaluation")("log-every", po::value(&c.log_every)->default_value(1),
                                           "progress line every N steps")(
      "peak-tflops", po::value(&c.peak_tflops)->default_value(0),
      "per-rank peak for MFU, e.g. the GPU's (0: the node's CPU cores x 0.27 TFLOP/s fp32, shared "
      "by the ranks on the node)");
  po::options_description all;
  all.add(model).add(data).add(optim).add(par).add(run);

  po::variables_map vm;
  const std::string usage =
      "shardlm train --out RUN_DIR [options]   (under mpirun for several ranks)";
  if (auto rc = parse_options(usage, all, args, vm)) return *rc;
  if (!config_file.empty()) {
    std::istringstream in(read_file(config_file));
    try {
      po::store(po::parse_config_file(in, all, /*allow_unregistered=*/false), vm);
      po::notify(vm);
    } catch (const po::error& e) {
      fail("--config " + config_file + ": " + e.what());
    }
  }

  c.model = model_preset(c.model_preset);
  if (vm.count("n-layer")) c.model.n_layer = n_layer;
  if (vm.count("n-head")) c.model.n_head = n_head;
  if (vm.count("n-embd")) c.model.n_embd = n_embd;
  if (vm.count("max-seq-len")) c.model.max_seq_len = max_seq_len;
  // Real data: the tokenizer decides the vocabulary unless it is given explicitly.
  if (vm.count("vocab-size"))
    c.model.vocab_size = vocab_size;
  else if (c.data != "synthetic")
    c.model.vocab_size = 0;
  if (!pp_layers.empty()) c.pp_layers = parse_int_list("--pp-layers", pp_layers);
  if (on_nan != "error" && on_nan != "skip")
    fail("--on-nan must be 'error' or 'skip', got '" + on_nan + "'");
  c.skip_non_finite = on_nan == "skip";
  if (!vm["global-batch"].defaulted() && !vm["global-batch-tokens"].defaulted())
    fail("--global-batch and --global-batch-tokens contradict each other: give one");
  if (global_batch_tokens > 0) {
    const int T = c.seq_len > 0 ? c.seq_len : c.model.max_seq_len;
    if (global_batch_tokens % T != 0)
      fail("--global-batch-tokens " + std::to_string(global_batch_tokens) +
           " is not a multiple of the sequence length " + std::to_string(T));
    c.global_batch = global_batch_tokens / T;
  }
  if (c.steps < 1) fail("--steps must be >= 1, got " + std::to_string(c.steps));
  if (c.eval_steps < 1) fail("--eval-steps must be >= 1, got " + std::to_string(c.eval_steps));
  if (c.log_every < 1) fail("--log-every must be >= 1, got " + std::to_string(c.log_every));
  if (c.optim.lr <= 0 || c.optim.min_lr < 0 || c.optim.min_lr > c.optim.lr)
    fail("learning rates must satisfy 0 <= --min-lr <= --lr and --lr > 0 (got lr " +
         std::to_string(c.optim.lr) + ", min-lr " + std::to_string(c.optim.min_lr) + ")");
  if (c.optim.warmup_steps < 0)
    fail("--warmup must be >= 0, got " + std::to_string(c.optim.warmup_steps));
  return run_training(c);
}

CommandRegistrar reg("train", "train a model (single process or under mpirun)", cmd_train);

}  // namespace
}  // namespace shardlm::cli
