// Generation speed with and without the KV cache (model/generator.h), random weights.
//   usage: bench_generate [--preset mini] [--tokens 200] [--prompt-tokens 16] [--repeat 3]
//                         [--temperature 1] [--top-k 0] [--top-p 1]
// Each mode generates --tokens tokens (EOS disabled) after a random prompt, --repeat times;
// the best run is reported as tokens/s over everything (prompt forward included), next to the
// milliseconds per token after the prompt. Both modes must produce the same tokens.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_args.h"
#include "core/error.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/generator.h"

namespace {

using namespace shardlm;

}  // namespace

int main(int argc, char** argv) try {
  std::string preset = "mini";
  int tokens = 200, prompt_tokens = 16, repeat = 3;
  GenerateOptions options;  // sampling defaults: temperature 1, top-k 0, top-p 1
  bench::Flags flags(
      "usage: bench_generate [--preset mini] [--tokens 200] [--prompt-tokens 16] [--repeat 3]\n"
      "                      [--temperature 1] [--top-k 0] [--top-p 1]");
  flags.add("preset", &preset)
      .add("tokens", &tokens)
      .add("prompt-tokens", &prompt_tokens)
      .add("repeat", &repeat)
      .add("temperature", &options.sampling.temperature)
      .add("top-k", &options.sampling.top_k)
      .add("top-p", &options.sampling.top_p);
  if (!flags.parse(argc, argv)) {
    std::printf("%s\n", flags.usage().c_str());
    return 0;
  }
  options.max_tokens = tokens;
  options.sampling.seed = 1;

  const ModelConfig cfg = model_preset(preset);
  Generator gen(cfg, cpu_backend());
  gen.weights().init(1);
  std::mt19937 rng(2);
  std::uniform_int_distribution<int32_t> dist(0, cfg.vocab_size - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (auto& t : prompt) t = dist(rng);

  std::printf(
      "preset %s (%d layers, %d channels, context %d), %d OpenMP threads; prompt %d tokens, %d "
      "generated, "
      "best of %d\n",
      preset.c_str(), cfg.n_layer, cfg.n_embd, cfg.max_seq_len, omp_get_max_threads(),
      prompt_tokens, tokens, repeat);
  std::vector<int32_t> reference;
  for (bool cache : {true, false}) {
    options.use_kv_cache = cache;
    GenerateResult best;
    best.total_seconds = 1e30;
    for (int r = 0; r < repeat; ++r) {
      GenerateResult result = gen.generate(prompt, options);
      if (result.total_seconds < best.total_seconds) best = result;
    }
    if (cache) reference = best.tokens;
    const size_t n = best.tokens.size();
    std::printf(
        "KV cache %-3s  %8.1f tokens/s  (prompt %7.2f ms, then %7.2f ms/token; %zu tokens, stop: "
        "%s)%s\n",
        cache ? "on" : "off", static_cast<double>(n) / best.total_seconds,
        1e3 * best.prompt_seconds,
        n > 1 ? 1e3 * (best.total_seconds - best.prompt_seconds) / static_cast<double>(n - 1) : 0.0,
        n, stop_reason_name(best.stop), cache || best.tokens == reference ? "" : "  TOKENS DIFFER");
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_generate: %s\n", e.what());
  return 1;
}
