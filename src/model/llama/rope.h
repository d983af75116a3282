// RoPE's frequencies and tables for the Llama family, as transformers computes them:
// inv_freq[i] = theta^(-2i/hd) (float32), optionally rescaled by Llama 3.1's "llama3"
// rope_scaling, and cos/sin of position * inv_freq[i]. RoPE has no parameters; the tables are
// made once on the host and uploaded by the training stage and the decoder.
#pragma once

#include <vector>

#include "model/config.h"

namespace shardlm {

// Throws naming the [model] key when rope_scaling or its four fields are inconsistent: an
// unknown type, a field set without rope_scaling=llama3, or llama3 with a field missing or out
// of range (factor >= 1, 0 < low_freq_factor < high_freq_factor, original context > 0).
void validate_rope_scaling(const ModelConfig& cfg);

// [hd/2] inverse frequencies (float32, like transformers' inv_freq buffer), scaled when
// cfg.rope_scaling is "llama3": wavelengths (2 pi / inv_freq) shorter than
// orig/high_freq_factor stay, longer than orig/low_freq_factor are divided by factor, and those
// between interpolate smoothly (transformers' _compute_llama3_parameters).
std::vector<float> rope_inv_freq(const ModelConfig& cfg);

// llama.cpp's form of the "llama3" rescale: [hd/2] factors by which it divides each frequency
// (GGUF tensor rope_freqs.weight), computed as its convert_hf_to_gguf.py does (float32): 1 for
// wavelengths shorter than orig/high_freq_factor, factor for those longer than
// orig/low_freq_factor, 1 / ((1 - smooth) / factor + smooth) between; that is
// inv_freq / rope_inv_freq(cfg) of the unscaled frequencies. Needs rope_scaling "llama3".
std::vector<float> llama3_frequency_factors(const ModelConfig& cfg);

// RoPE's cos and sin tables [max_seq, hd/2] (host): angle = float(position) * inv_freq[i].
struct RopeTables {
  std::vector<float> cos, sin;
};
RopeTables rope_tables(const ModelConfig& cfg);

}  // namespace shardlm
