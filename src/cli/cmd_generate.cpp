// `shardlm generate`: samples text from a checkpoint on one process with a KV cache
// (model/generator.h), on the --device backend (kernels/registry.h). Prints the prompt and the
// sample on stdout, statistics on stderr.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"
#include "kernels/registry.h"
#include "model/generator.h"
#include "train/generation_loader.h"

namespace shardlm::cli {
namespace {

std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    const int id = parse_int("--prompt-ids: token id", word);
    if (id < 0) fail("--prompt-ids: '" + word + "' is not a token id");
    ids.push_back(id);
  }
  return ids;
}

// Logits [n, vocab_size] predicting the token after each of the n prompt positions, as raw
// little-endian f32 (how the conversion checks compare shardlm with other engines).
void write_prompt_logits(Generator& generator, const std::vector<int32_t>& prompt,
                         const std::string& path) {
  std::string bytes;
  auto add = [&](const std::vector<float>& logits) {
    bytes.append(reinterpret_cast<const char*>(logits.data()), logits.size() * sizeof(float));
  };
  add(generator.prefill({prompt[0]}));
  for (size_t i = 1; i < prompt.size(); ++i) add(generator.step(prompt[i]));
  write_file_atomic(path, bytes);
}

int cmd_generate(const std::vector<std::string>& args) {
  std::string checkpoint, prompt, prompt_ids, device, logits_out;
  GenerateOptions options;
  bool no_kv_cache = false, ignore_eos = false;
  po::options_description opts("Options");
  opts.add_options()("checkpoint", po::value(&checkpoint)->required(),
                     "a checkpoint directory (step_XXXXXXXX), a run directory (its newest "
                     "committed checkpoint under "
                     "checkpoints/) or a checkpoint root (its newest committed checkpoint)")(
      "prompt", po::value(&prompt), "text to continue (encoded with the checkpoint's tokenizer)")(
      "prompt-ids", po::value(&prompt_ids),
      "whitespace-separated token ids instead of --prompt (for runs without a tokenizer); the "
      "output is ids")("max-tokens",
                       po::value(&options.max_tokens)->default_value(options.max_tokens),
                       "tokens to generate at most")(
      "temperature", po::value(&options.sampling.temperature)->default_value(1.0f, "1"),
      "softmax temperature; 0 = greedy (always the most likely token)")(
      "top-k", po::value(&options.sampling.top_k)->default_value(0),
      "sample among the k most likely tokens; 0 = all")(
      "top-p", po::value(&options.sampling.top_p)->default_value(1.0f, "1"),
      "sample among the fewest most likely tokens whose probability reaches p (nucleus); 1 = all")(
      "seed", po::value(&options.sampling.seed)->default_value(1337),
      "sampling seed (same seed, same text)")(
      "device", po::value(&device)->default_value("cpu"),
      "kernel backend: cpu, or cuda (a build with CUDA and a GPU on this machine)")(
      "no-kv-cache", po::bool_switch(&no_kv_cache),
      "run the whole sequence again for every token instead of caching keys and values (slow; for "
      "checks)")("ignore-eos", po::bool_switch(&ignore_eos),
                 "keep going past the end-of-sequence token")(
      "logits-out", po::value(&logits_out),
      "also write the logits after every prompt position to this file: [prompt length, "
      "vocab_size] little-endian f32");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm generate --checkpoint DIR --prompt TEXT [options]\n\n"
          "Continues the prompt with the checkpoint's model in this process, on the --device\n"
          "backend (cpu by default).\n"
          "Stops at the end-of-sequence token, after --max-tokens tokens, or when prompt and\n"
          "sample fill the model's context (max_seq_len).",
          opts, args, vm))
    return *rc;
  if (vm.count("prompt") == vm.count("prompt-ids")) {
    std::cerr
        << "error: give exactly one of --prompt and --prompt-ids (see shardlm generate --help)\n";
    return shardlm::kExitUsage;
  }
  options.use_kv_cache = !no_kv_cache;
  options.sampling.validate();
  const bool text_mode = vm.count("prompt") != 0;
  const std::vector<int32_t> given_ids = text_mode ? std::vector<int32_t>() : parse_ids(prompt_ids);

  GenerationModel loaded = load_generation_model(checkpoint, resolve_backend(device));
  const ModelConfig& cfg = loaded.generator->config();
  std::cerr << "loaded " << loaded.checkpoint.string() << ": " << cfg.n_layer << " layers, "
            << cfg.n_head << " heads, " << cfg.n_embd << " channels, vocabulary " << cfg.vocab_size
            << ", context " << cfg.max_seq_len << "\n";
  if (text_mode && !loaded.tokenizer)
    fail("checkpoint " + loaded.checkpoint.string() +
         " carries no tokenizer: give the prompt as --prompt-ids");
  const std::vector<int32_t> prompt_tokens =
      text_mode ? loaded.tokenizer->encode(prompt) : given_ids;
  if (loaded.tokenizer && !ignore_eos) options.eos_id = loaded.tokenizer->eos_id();

  if (!logits_out.empty() && !prompt_tokens.empty())
    write_prompt_logits(*loaded.generator, prompt_tokens, logits_out);
  const GenerateResult result = loaded.generator->generate(prompt_tokens, options);
  if (text_mode) {
    std::cout << prompt << loaded.tokenizer->decode(result.tokens) << std::endl;
  } else {
    std::vector<int32_t> all = prompt_tokens;
    all.insert(all.end(), result.tokens.begin(), result.tokens.end());
    for (size_t i = 0; i < all.size(); ++i) std::cout << (i ? " " : "") << all[i];
    std::cout << std::endl;
  }
  const size_t n = result.tokens.size();
  char stats[256];
  std::snprintf(stats, sizeof stats,
                "prompt %zu tokens in %.3f s; generated %zu tokens in %.3f s in all: %.1f tokens/s "
                "(KV cache %s); "
                "stopped: %s\n",
                prompt_tokens.size(), result.prompt_seconds, n, result.total_seconds,
                result.total_seconds > 0 ? static_cast<double>(n) / result.total_seconds : 0.0,
                options.use_kv_cache ? "on" : "off", stop_reason_name(result.stop));
  std::cerr << stats;
  return shardlm::kExitOk;
}

const CommandRegistrar reg("generate",
                           "sample text from a checkpoint (KV-cached, --device cpu|cuda)",
                           cmd_generate);

}  // namespace
}  // namespace shardlm::cli
