// Byte-level BPE from a tokenizer.json (data/bpe_model.h): GPT-2's pre-tokenizer pieces, the
// merge order, added tokens, decoding, the cuts data prepare may make, a dataset prepared with
// it, and the refusals (file and field named). The ids equal the `tokenizers` library's on real
// tokenizers in tests/convert/check_bpe.py (CTest convert_bpe-tokenizer); these tests pin the
// rules with a small hand-made tokenizer.json.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/byte_level.h"
#include "data/dataset_index.h"
#include "data/gpt2_pretokenizer.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "data_test_support.h"
#include "support_errors.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::expect_error;

// The byte-level characters of `text`, as a vocabulary entry spells it.
std::string mapped(std::string_view text) {
  std::string out;
  for (char c : text) out += byte_level_char(static_cast<uint8_t>(c));
  return out;
}

// A tokenizer.json as `tokenizers` writes one: the 256 byte characters (ids 0..255), the
// merged pieces in merge order, <|endoftext|> (special) and <user> (not special) added.
json small_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object(), merge_list = json::array();
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(static_cast<uint8_t>(b))] = b;
  for (const auto& [a, b] : merges) {
    const std::string l = mapped(a), r = mapped(b);
    merge_list.push_back(l + " " + r);
    if (!vocab.contains(l + r)) vocab[l + r] = vocab.size();
  }
  const int n = static_cast<int>(vocab.size());
  const auto added = [](int id, const char* content, bool special) {
    return json{{"id", id},          {"content", content}, {"single_word", false},
                {"lstrip", false},   {"rstrip", false},    {"normalized", !special},
                {"special", special}};
  };
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", {added(n, "<|endoftext|>", true), added(n + 1, "<user>", false)}},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

const std::vector<std::pair<std::string, std::string>> kEnglish = {
    {" ", "t"},  {"h", "e"}, {" t", "he"}, {"a", "a"}, {"aa", "aa"}, {"i", "n"},
    {"in", "g"}, {" ", "a"}, {"o", "u"},   {"e", "r"}, {" ", "s"},   {"\n", "\n"}};

Tokenizer tokenizer_of(const json& j) {
  return Tokenizer::from_serialized(j.dump(), "'test.json'");
}

std::vector<std::string> pieces_of(std::string_view text) {
  std::vector<std::string_view> pieces;
  std::vector<TextChar> chars;
  gpt2_pretokenize(text, pieces, chars);
  return {pieces.begin(), pieces.end()};
}

TEST(ByteLevel, TheAlphabetIsGpt2s) {
  EXPECT_EQ(byte_level_char(' '), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(byte_level_char('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(byte_level_char('A'), "A");
  EXPECT_EQ(byte_level_char(0xAD), "\xC5\x83");  // the soft hyphen is the 68th remapped byte
  for (int b = 0; b < 256; ++b) {
    std::vector<TextChar> c;
    split_chars(byte_level_char(static_cast<uint8_t>(b)), c);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(byte_level_byte(c[0].code), b);
  }
  EXPECT_EQ(byte_level_byte(' '), -1);  // a remapped byte's own character stands for nothing
  EXPECT_EQ(byte_level_byte(0x144), -1);
}

TEST(Gpt2PreTokenizer, SplitsAsTheRegularExpression) {
  // tokenizers' ByteLevel(add_prefix_space=False).pre_tokenize_str, byte-level characters
  // written as text.
  EXPECT_EQ(pieces_of("Hello world's  end\n\n x 12ab!!'ll"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " end", "\n\n", " x", " 12",
                                      "ab", "!!'", "ll"}));
  EXPECT_EQ(pieces_of("a   "), (std::vector<std::string>{"a", "   "}));  // \s+(?!\S) at the end
  EXPECT_EQ(pieces_of("a \tb"), (std::vector<std::string>{"a", " ", "\t", "b"}));
  EXPECT_EQ(pieces_of("they're I'M"), (std::vector<std::string>{"they", "'re", " I", "'", "M"}));
  // Unicode classes: letters (Greek, CJK), numbers (Arabic-Indic digits, Roman numeral), the
  // no-break and ideographic spaces as \s, an emoji as neither.
  EXPECT_EQ(pieces_of("αβ 日本 ١٢ Ⅷ\u00A0x\u3000🎉!"),
            (std::vector<std::string>{"αβ", " 日本", " ١٢", " Ⅷ", "\u00A0", "x", "\u3000", "🎉!"}));
  // Not UTF-8: each stray byte is a character of class "other".
  EXPECT_EQ(pieces_of("a\xFF\xFE b\xC3"),
            (std::vector<std::string>{"a", "\xFF\xFE", " b", "\xC3"}));
}

TEST(BpeTokenizer, MergesLowestRankFirstAndLeftmostAmongEqualRanks) {
  const Tokenizer tok = tokenizer_of(small_tokenizer(kEnglish));
  const json j = small_tokenizer(kEnglish);
  const auto id = [&](std::string_view piece) {
    return j["model"]["vocab"][mapped(piece)].get<int>();
  };
  EXPECT_EQ(tok.encode("aaa"), (std::vector<int32_t>{id("aa"), id("a")}));
  EXPECT_EQ(tok.encode("aaaaa"), (std::vector<int32_t>{id("aaaa"), id("a")}));
  EXPECT_EQ(tok.encode("the thing"),
            (std::vector<int32_t>{id("t"), id("he"), id(" t"), id("h"), id("ing")}));
  EXPECT_EQ(tok.encode("the thing"), tok.encode("the thing")) << "from the cache";
}

TEST(BpeTokenizer, AddedTokensSpecialIdsAndDecoding) {
  json j = small_tokenizer(kEnglish);
  const Tokenizer tok = tokenizer_of(j);
  const int eos = j["added_tokens"][0]["id"], user = j["added_tokens"][1]["id"];
  EXPECT_EQ(tok.kind(), TokenizerKind::kByteLevelBpe);
  EXPECT_STREQ(tok.file_name(), "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), user + 1);
  EXPECT_EQ(tok.eos_id(), eos);
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_EQ(tok.piece_type(eos), Tokenizer::PieceType::kControl);
  EXPECT_EQ(tok.piece_type(user), Tokenizer::PieceType::kUserDefined);
  EXPECT_EQ(tok.piece_type(0), Tokenizer::PieceType::kNormal);
  const auto ids = tok.encode("x<|endoftext|><user>y");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[1], eos);
  EXPECT_EQ(ids[2], user);
  EXPECT_EQ(tok.decode(ids), "x<user>y") << "special tokens decode to nothing";
  EXPECT_EQ(tok.merges().size(), kEnglish.size());
  // Any bytes round-trip: emoji, tabs, runs of spaces, bytes that are not UTF-8.
  const std::string text = "Grüße 🙂\t\t  naïve\n\n\n x \xFF\xC3(\xE2\x82";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  expect_error([&] { tok.decode({tok.vocab_size()}); }, {"cannot decode token id"});
}

TEST(BpeTokenizer, AddedTokensMatchLeftmostLongest) {
  json j = small_tokenizer(kEnglish);
  const int n = j["added_tokens"][1]["id"].get<int>() + 1;
  j["added_tokens"].push_back(
      {{"id", n}, {"content", "<user><x>"}, {"special", false}, {"normalized", true}});
  const Tokenizer tok = tokenizer_of(j);
  const int user = j["added_tokens"][1]["id"];
  EXPECT_EQ(tok.encode("a<user><x>"), (std::vector<int32_t>{'a', n}));
  EXPECT_EQ(tok.encode("<user><y"), (std::vector<int32_t>{user, '<', 'y'}));
}

// Encoding the two sides of every cut independent_cut allows gives the whole's tokens.
TEST(BpeTokenizer, IndependentCutsEncodeLikeTheWhole) {
  const Tokenizer tok = tokenizer_of(small_tokenizer(kEnglish));
  const std::string text = testing::shakespeare_slice(6000) +
                           "  indented\n    more   text\t\tx 1234abc!!'s 'll\n\n\n"
                           "日本語のテキスト、αβγ δ\u3000ε<|endoftext|><user>  <|endoftext|>z" +
                           std::string(40, ' ') + "aaaa" + std::string(40, 'a') + "\n";
  const auto whole = tok.encode(text);
  int cuts = 0;
  for (size_t start = 0; start + 64 < text.size(); start += 37) {
    const std::string_view rest = std::string_view(text).substr(start);
    const size_t p = tok.independent_cut(rest, 48);
    if (p == 0) continue;
    ASSERT_LE(p, 48u);
    auto left = tok.encode(text.substr(0, start + p));
    const auto right = tok.encode(text.substr(start + p));
    left.insert(left.end(), right.begin(), right.end());
    ASSERT_EQ(left, whole) << "cut at byte " << start + p;
    ++cuts;
  }
  EXPECT_GT(cuts, 100);
  // Never inside an added token, never after whitespace.
  EXPECT_EQ(tok.independent_cut("ab<|endoftext|>cd", 8), 2u);
  EXPECT_EQ(tok.independent_cut("      xy", 5), 0u);
}

TEST(BpeTokenizer, SentencePieceCutsAfterNewlinesAsBefore) {
  const fs::path dir = testing::make_scratch_dir("bpe-sp");
  const Tokenizer sp = Tokenizer::from_file(testing::tiny_tokenizer_model(dir));
  EXPECT_EQ(sp.kind(), TokenizerKind::kSentencePiece);
  EXPECT_STREQ(sp.file_name(), "tokenizer.model");
  EXPECT_EQ(sp.independent_cut("ab\ncd\nef", 6), 6u);
  EXPECT_EQ(sp.independent_cut("ab\ncd\nef", 5), 3u);
  EXPECT_EQ(sp.independent_cut("abcdef", 5), 0u);
  fs::remove_all(dir);
}

TEST(BpeTokenizer, DataPrepareStoresTheTokenizerJsonAndEncodesLikeTheWhole) {
  const fs::path dir = testing::make_scratch_dir("bpe-prepare");
  const std::string text = testing::shakespeare_slice(120'000);
  testing::write_file(dir / "in.txt", text);
  testing::write_file(dir / "tokenizer.json", small_tokenizer(kEnglish).dump(1));
  PrepareOptions o;
  o.input_files = {(dir / "in.txt").string()};
  o.tokenizer_path = (dir / "tokenizer.json").string();
  o.out_dir = (dir / "data").string();
  o.val_fraction = 0.0;
  o.block_bytes = 700;
  o.num_threads = 2;
  prepare_token_shards(o);
  EXPECT_TRUE(fs::exists(dir / "data" / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir / "data" / "tokenizer.model"));
  const DatasetIndex index = read_dataset_index(o.out_dir);
  EXPECT_EQ(index.tokenizer_file, "tokenizer.json");
  const Tokenizer tok = open_dataset_tokenizer(o.out_dir, index);
  const TokenDataset train(o.out_dir, "train");
  std::vector<int32_t> tokens(train.token_count());
  train.read(0, tokens.size(), tokens.data());
  auto want = tok.encode(text);
  want.push_back(tok.eos_id());
  EXPECT_EQ(tokens, want) << "blocks of 700 bytes encode as the whole file";
  // The index names the file; one replaced by another tokenizer is refused.
  testing::write_file(dir / "data" / "tokenizer.json", small_tokenizer({{"a", "b"}}).dump());
  expect_error([&] { open_dataset_tokenizer(o.out_dir, index); },
               {"tokenizer.json", "fingerprint", "damaged or was replaced"});
  fs::remove_all(dir);
}

TEST(BpeTokenizer, RefusesWhatItDoesNotReadNamingFileAndField) {
  const json good = small_tokenizer(kEnglish);
  const auto refused = [&](const std::function<void(json&)>& edit,
                           std::initializer_list<std::string_view> words) {
    json j = good;
    edit(j);
    expect_error([&] { tokenizer_of(j); }, words);
  };
  refused([](json& j) { j["model"]["type"] = "WordPiece"; },
          {"'test.json'", "model.type", "WordPiece"});
  refused([](json& j) { j["model"]["dropout"] = 0.1; }, {"model.dropout"});
  refused([](json& j) { j["model"]["byte_fallback"] = true; }, {"model.byte_fallback"});
  refused([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }, {"normalizer", "'NFC'"});
  refused(
      [](json& j) {
        j["pre_tokenizer"] = {{"type", "Metaspace"}};
      },
      {"pre_tokenizer.type", "Metaspace"});
  refused([](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; },
          {"pre_tokenizer.add_prefix_space"});
  refused([](json& j) { j["pre_tokenizer"].erase("add_prefix_space"); },
          {"pre_tokenizer.add_prefix_space", "missing"});
  refused([](json& j) { j["pre_tokenizer"]["use_regex"] = false; }, {"pre_tokenizer.use_regex"});
  refused([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }, {"decoder.type"});
  refused([](json& j) { j["model"]["vocab"].erase("A"); }, {"model.vocab", "ids 0.."});
  refused([](json& j) { j["model"]["vocab"]["A"] = 0; }, {"model.vocab", "gives id 0"});
  refused([](json& j) { j["model"]["merges"][0] = "x y z"; }, {"model.merges[0]", "one space"});
  refused([](json& j) { j["model"]["merges"].push_back("q zz"); },
          {"model.merges[12]", "'zz' is not in model.vocab"});
  refused([](json& j) { j["added_tokens"][0]["id"] = 3; }, {"added_tokens[0].id", "is 3"});
  refused([](json& j) { j["added_tokens"][1]["lstrip"] = true; }, {"added_tokens[1].lstrip"});
  refused([](json& j) { j.erase("model"); }, {"model is missing"});
  // A vocabulary without a byte's character (ids kept dense).
  refused(
      [](json& j) {
        json& v = j["model"]["vocab"];
        const int id = v["A"];
        v.erase("A");
        v["\xE2\x82\xAC"] = id;
      },
      {"model.vocab lacks 'A'", "0x41"});
  // From a file: the path; a cut file is not JSON.
  const fs::path dir = testing::make_scratch_dir("bpe-bad");
  const std::string bytes = good.dump();
  testing::write_file(dir / "cut.json", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { Tokenizer::from_file((dir / "cut.json").string()); },
               {(dir / "cut.json").string(), "not valid JSON"});
  // A number past a double's range is an out_of_range, not a parse_error, in nlohmann-json
  // (found by fuzz_tokenizer_json: it ended the process).
  testing::write_file(dir / "huge.json", R"({"model": {"dropout": 2e542}})");
  expect_error([&] { Tokenizer::from_file((dir / "huge.json").string()); },
               {(dir / "huge.json").string(), "not valid JSON", "number overflow"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace shardlm
