// A Hugging Face `tokenizers` tokenizer.json of GPT-2's kind, read into what a byte-level BPE
// encoder needs. Accepted: model.type BPE (vocab, merges as "a b" strings or [a, b] pairs,
// ignore_merges, unk_token) with no dropout, subword prefix/suffix or byte fallback; the
// ByteLevel pre-tokenizer with use_regex true and add_prefix_space false; no normalizer; a
// ByteLevel decoder or none; added tokens without single_word/lstrip/rstrip. The post-processor,
// truncation and padding are not read: shardlm encodes as `tokenizers` does with
// add_special_tokens=False. Everything else is refused naming `origin` and the field.
//
// Ids: the vocabulary's ids are 0..n-1; an added token whose content is in the vocabulary has its
// vocabulary id, the others follow from n in file order (what `tokenizers` assigns on load).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardlm {

struct AddedTokenSpec {
  int id = 0;
  std::string content;
  bool special = false;     // skipped by decode; control type in GGUF
  bool normalized = false;  // matched after normalization (there is none: the order of matching)
};

struct ByteLevelBpeSpec {
  std::vector<std::string> vocab;                           // by id, byte-level characters
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  std::vector<AddedTokenSpec> added;                        // in file order
  bool ignore_merges = false;  // a word that is a vocabulary entry is that token
  std::string unk_token;       // "" when none
};

// Parses and checks `json` (the bytes of a tokenizer.json); throws Error naming `origin` and
// the field for anything malformed or unsupported.
ByteLevelBpeSpec parse_tokenizer_json(std::string_view json, const std::string& origin);

// Whether `bytes` look like a tokenizer.json (JSON text: the first non-blank byte is '{') rather
// than a SentencePiece model (a protobuf).
bool looks_like_tokenizer_json(std::string_view bytes);

}  // namespace shardlm
