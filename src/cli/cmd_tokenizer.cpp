// `shardlm tokenizer train|encode|decode|info`: SentencePiece BPE tokenizers (data/tokenizer.h).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/cli_options.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/parse.h"
#include "data/tokenizer.h"

namespace shardlm::cli {
namespace {

std::string hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

int tokenizer_train(const std::vector<std::string>& args) {
  TokenizerTrainOptions o;
  int64_t max_sentences = o.max_sentences;
  po::options_description opts("Options");
  opts.add_options()("input", po::value(&o.input_files)->multitoken()->required(),
                     "UTF-8 text files to train on (one or more)")(
      "vocab-size", po::value(&o.vocab_size)->required(),
      "vocabulary size, including the 4 special ids (pad=0 unk=1 bos=2 eos=3) and the 256 "
      "byte-fallback pieces")("model-prefix", po::value(&o.model_prefix)->required(),
                              "writes <prefix>.model and <prefix>.vocab")(
      "character-coverage",
      po::value(&o.character_coverage)->default_value(o.character_coverage, "0.9995"),
      "fraction of characters given their own piece; rarer ones are spelled as UTF-8 bytes")(
      "max-sentences", po::value(&max_sentences)->default_value(max_sentences),
      "training lines sampled from the input (bounds memory); 0 = all")(
      "threads", po::value(&o.num_threads)->default_value(0), "training threads; 0 = all cores")(
      "verbose", po::bool_switch(&o.verbose), "show SentencePiece's training log");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm tokenizer train --input FILE... --vocab-size N --model-prefix OUT [options]",
          opts, args, vm))
    return *rc;
  o.max_sentences = max_sentences;
  train_tokenizer(o);
  const Tokenizer tok = Tokenizer::from_file(o.model_prefix + ".model");
  std::cout << "wrote " << o.model_prefix << ".model: vocab " << tok.vocab_size()
            << ", fingerprint " << hex64(tok.fingerprint()) << "\n";
  return shardlm::kExitOk;
}

int tokenizer_encode(const std::vector<std::string>& args) {
  std::string model, text;
  po::options_description opts("Options");
  opts.add_options()("model", po::value(&model)->required(), "the .model file")(
      "text", po::value(&text), "text to encode (default: all of standard input)");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm tokenizer encode --model MODEL [--text TEXT]    (prints ids on one line)", opts,
          args, vm))
    return *rc;
  const Tokenizer tok = Tokenizer::from_file(model);
  const auto ids = tok.encode(vm.count("text") ? text : read_stdin());
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return shardlm::kExitOk;
}

int tokenizer_decode(const std::vector<std::string>& args) {
  std::string model, ids_text;
  po::options_description opts("Options");
  opts.add_options()("model", po::value(&model)->required(), "the .model file")(
      "ids", po::value(&ids_text), "whitespace-separated ids (default: standard input)");
  po::variables_map vm;
  if (auto rc = parse_options(
          "shardlm tokenizer decode --model MODEL [--ids \"ID ID ...\"]    (prints the text)", opts,
          args, vm))
    return *rc;
  const Tokenizer tok = Tokenizer::from_file(model);
  std::istringstream in(vm.count("ids") ? ids_text : read_stdin());
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) ids.push_back(parse_int("token id", word));
  std::cout << tok.decode(ids);
  return shardlm::kExitOk;
}

int tokenizer_info(const std::vector<std::string>& args) {
  std::string model;
  po::options_description opts("Options");
  opts.add_options()("model", po::value(&model)->required(), "the .model file");
  po::variables_map vm;
  if (auto rc = parse_options("shardlm tokenizer info --model MODEL", opts, args, vm)) return *rc;
  const Tokenizer tok = Tokenizer::from_file(model);
  std::cout << "model        " << model << "\n"
            << "vocab_size   " << tok.vocab_size() << "\n"
            << "fingerprint  " << hex64(tok.fingerprint()) << "\n"
            << "pad_id       " << tok.pad_id() << "\n"
            << "unk_id       " << tok.unk_id() << "\n"
            << "bos_id       " << tok.bos_id() << "\n"
            << "eos_id       " << tok.eos_id() << "\n";
  return shardlm::kExitOk;
}

int cmd_tokenizer(const std::vector<std::string>& args) {
  return run_subcommand(
      "tokenizer",
      {{"train", "train a BPE tokenizer with byte fallback", tokenizer_train},
       {"encode", "print the token ids of a text", tokenizer_encode},
       {"decode", "print the text of token ids", tokenizer_decode},
       {"info", "print a model's vocab size, special ids and fingerprint", tokenizer_info}},
      args);
}

const CommandRegistrar reg("tokenizer", "train and use SentencePiece tokenizers", cmd_tokenizer);

}  // namespace
}  // namespace shardlm::cli
