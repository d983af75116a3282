#include "data/bpe_model.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/error.h"
#include "data/byte_level.h"
#include "data/gpt2_pretokenizer.h"
#include "data/tokenizer_json.h"

namespace shardlm {

namespace {

// Pieces cached per instance before the cache is emptied and starts over.
constexpr size_t kCacheEntries = size_t{1} << 17;
// The end-of-text token (what `data prepare` ends a document with): the first of these that is
// a special added token.
constexpr const char* kEosCandidates[] = {"<|endoftext|>", "<|end_of_text|>", "</s>"};

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct MergeRule {
  uint32_t rank;
  int32_t id;  // the merged piece
};
using MergeMap = std::unordered_map<uint64_t, MergeRule>;

// The added tokens of one matching pass, found leftmost-longest.
class AddedMatcher {
 public:
  void add(const std::string& content, int32_t id) {
    auto& bucket = by_first_[static_cast<unsigned char>(content[0])];
    bucket.push_back({content, id});
    std::stable_sort(bucket.begin(), bucket.end(), [](const Entry& a, const Entry& b) {
      return a.content.size() > b.content.size();
    });
  }
  // The leftmost match at or after `from` (the longest there); false when there is none.
  bool find(std::string_view text, size_t from, size_t& at, size_t& length, int32_t& id) const {
    for (size_t i = from; i < text.size(); ++i)
      for (const Entry& e : by_first_[static_cast<unsigned char>(text[i])])
        if (text.compare(i, e.content.size(), e.content) == 0) {
          at = i, length = e.content.size(), id = e.id;
          return true;
        }
    return false;
  }

 private:
  struct Entry {
    std::string content;
    int32_t id;
  };
  std::array<std::vector<Entry>, 256> by_first_;
};

// Whether a piece of GPT-2's pre-tokenizer can hold the characters x, y (in this order) —
// no: then the pieces of any text break between them and what follows y is split the same
// from y on (the expression looks ahead but never back). x must not be whitespace: a run of
// whitespace ends differently at the end of a text (\s+(?!\S)). Returns the cut's tier (0
// before a newline, 1 before other whitespace, 2 at another change of class) or -1.
int cut_tier(const TextChar& x, const TextChar& y) {
  if (x.cls == CharClass::kSpace) return -1;
  if (y.cls == CharClass::kSpace) return y.code == '\n' ? 0 : 1;
  if (x.cls == y.cls) return -1;
  const bool contraction =
      x.code == '\'' &&
      std::string_view("strvmld").find(static_cast<char>(y.code)) != std::string_view::npos &&
      y.code < 0x80;
  return contraction ? -1 : 2;
}

// One symbol of a word being merged (the library's Word/Symbol); len 0 once merged away.
struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t len;
};
struct Candidate {
  uint32_t rank;
  uint32_t pos;
  int32_t id;
};
// The queue's top is the lowest rank, then the leftmost position.
struct LaterFirst {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};
using CandidateQueue = std::priority_queue<Candidate, std::vector<Candidate>, LaterFirst>;

void push_pair(const std::vector<Symbol>& s, const MergeMap& merges, int32_t left,
               CandidateQueue& queue) {
  if (left < 0) return;
  const int32_t right = s[left].next;
  if (right < 0) return;
  const auto it = merges.find(pair_key(s[left].id, s[right].id));
  if (it != merges.end()) queue.push({it->second.rank, static_cast<uint32_t>(left), it->second.id});
}

// BPE over one word's symbols, in the library's order: lowest rank first, leftmost first among
// equal ranks; an entry whose pair has changed since it was queued is skipped unless the pair
// now there merges into the same piece (the library checks the merged id only).
void merge_all(std::vector<Symbol>& s, const MergeMap& merges) {
  CandidateQueue queue;
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(s.size()); ++i) push_pair(s, merges, i, queue);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = s[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol right = s[left.next];
    const auto it = merges.find(pair_key(left.id, right.id));
    if (it == merges.end() || it->second.id != top.id) continue;
    s[left.next].len = 0;
    left.id = top.id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0) s[right.next].prev = static_cast<int32_t>(top.pos);
    push_pair(s, merges, left.prev, queue);
    push_pair(s, merges, static_cast<int32_t>(top.pos), queue);
  }
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class ByteLevelBpeModel final : public TokenizerModel {
 public:
  ByteLevelBpeModel(ByteLevelBpeSpec spec, const std::string& origin)
      : pieces_(std::move(spec.vocab)), ignore_merges_(spec.ignore_merges) {
    std::unordered_map<std::string, int> ids;
    for (size_t id = 0; id < pieces_.size(); ++id) ids.emplace(pieces_[id], static_cast<int>(id));
    if (ignore_merges_) vocab_ids_ = ids;
    index_bytes(ids, origin);
    index_merges(std::move(spec.merges), ids);
    unk_id_ = spec.unk_token.empty() ? -1 : ids.at(spec.unk_token);
    types_.assign(pieces_.size(), PieceType::kNormal);
    if (unk_id_ >= 0) types_[unk_id_] = PieceType::kUnknown;
    add_tokens(spec.added);
    bytes_.resize(pieces_.size());
    for (size_t id = 0; id < pieces_.size(); ++id) bytes_[id] = piece_bytes(static_cast<int>(id));
  }

  TokenizerKind kind() const override { return TokenizerKind::kByteLevelBpe; }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> out;
    Scratch scratch;
    split_added(text, raw_, out, [&](std::string_view part) {
      split_added(part, normalized_, out,
                  [&](std::string_view rest) { encode_text(rest, out, scratch); });
    });
    return out;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) text += bytes_[id];
    return text;
  }

  int vocab_size() const override { return static_cast<int>(pieces_.size()); }
  int pad_id() const override { return -1; }
  int unk_id() const override { return unk_id_; }
  int bos_id() const override { return -1; }
  int eos_id() const override { return eos_id_; }
  const std::string& piece(int id) const override { return pieces_[id]; }
  float piece_score(int) const override { return 0.0f; }
  PieceType piece_type(int id) const override { return types_[id]; }
  std::vector<std::pair<std::string, std::string>> merges() const override { return merge_text_; }

  size_t independent_cut(std::string_view text, size_t limit) const override {
    std::vector<TextChar> chars;
    split_chars(text.substr(0, std::min(text.size(), limit + 4)), chars);
    // Best first: before a line end, before other whitespace, at a change of class.
    size_t best[3] = {0, 0, 0};
    for (size_t k = 1; k < chars.size() && chars[k].offset <= limit; ++k) {
      const int tier = cut_tier(chars[k - 1], chars[k]);
      if (tier >= 0 && !straddles_added(text, chars[k].offset)) best[tier] = chars[k].offset;
    }
    return best[0] ? best[0] : best[1] ? best[1] : best[2];
  }

 private:
  struct Scratch {
    std::vector<std::string_view> pieces;
    std::vector<TextChar> chars;
    std::vector<Symbol> symbols;
  };

  // The id of each byte's character; all 256 must be in the vocabulary.
  void index_bytes(const std::unordered_map<std::string, int>& ids, const std::string& origin) {
    for (int b = 0; b < 256; ++b) {
      const auto it = ids.find(byte_level_char(static_cast<uint8_t>(b)));
      if (it == ids.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b);
        fail("tokenizer.json " + origin + ": model.vocab lacks '" +
             byte_level_char(static_cast<uint8_t>(b)) + "', the byte-level character of byte " +
             hex + " (a byte-level BPE vocabulary starts from all 256)");
      }
      byte_ids_[b] = it->second;
    }
  }

  void index_merges(std::vector<std::pair<std::string, std::string>> merges,
                    const std::unordered_map<std::string, int>& ids) {
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      // A pair listed twice keeps its last rank, as the library's map does.
      merges_[pair_key(ids.at(a), ids.at(b))] = {static_cast<uint32_t>(rank), ids.at(a + b)};
    }
    merge_text_ = std::move(merges);
  }

  void add_tokens(const std::vector<AddedTokenSpec>& added) {
    for (const AddedTokenSpec& t : added) {
      if (t.id == static_cast<int>(pieces_.size())) {  // beyond the vocabulary (the parser's rule)
        pieces_.push_back(t.content);
        types_.push_back(PieceType::kNormal);
      }
      types_[t.id] = t.special ? PieceType::kControl : PieceType::kUserDefined;
      (t.normalized ? normalized_ : raw_).add(t.content, t.id);
      added_.push_back(t.content);
      if (t.special) special_[t.id] = true;
    }
    for (const char* candidate : kEosCandidates)
      for (const AddedTokenSpec& t : added)
        if (eos_id_ < 0 && t.special && t.content == candidate) eos_id_ = t.id;
  }

  // What id decodes to: nothing for a special token, an added token's text, or the bytes the
  // piece's characters stand for (a piece with a character outside the alphabet: its UTF-8,
  // as the library's ByteLevel decoder does).
  std::string piece_bytes(int id) const {
    if (special_.count(id)) return "";
    if (types_[id] == PieceType::kUserDefined) return pieces_[id];
    std::vector<TextChar> chars;
    split_chars(pieces_[id], chars);
    std::string out;
    for (const TextChar& c : chars) {
      const int b = byte_level_byte(c.code);
      if (b < 0 || (c.bytes == 1 && c.code >= 0x80)) return pieces_[id];
      out += static_cast<char>(b);
    }
    return out;
  }

  // Calls text_part on the text between the pass's added tokens, appending their ids to out.
  template <typename F>
  static void split_added(std::string_view text, const AddedMatcher& matcher,
                          std::vector<int32_t>& out, F&& text_part) {
    size_t from = 0, at = 0, length = 0;
    int32_t id = 0;
    while (matcher.find(text, from, at, length, id)) {
      if (at > from) text_part(text.substr(from, at - from));
      out.push_back(id);
      from = at + length;
    }
    if (from < text.size()) text_part(text.substr(from));
  }

  void encode_text(std::string_view text, std::vector<int32_t>& out, Scratch& s) const {
    gpt2_pretokenize(text, s.pieces, s.chars);
    for (std::string_view word : s.pieces) encode_word(word, out, s);
  }

  void encode_word(std::string_view word, std::vector<int32_t>& out, Scratch& s) const {
    if (ignore_merges_) {
      std::string mapped;
      for (char c : word) mapped += byte_level_char(static_cast<uint8_t>(c));
      if (const auto it = vocab_ids_.find(mapped); it != vocab_ids_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    {
      std::lock_guard lock(cache_mu_);
      if (const auto it = cache_.find(word); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    s.symbols.clear();
    for (size_t i = 0; i < word.size(); ++i)
      s.symbols.push_back({byte_ids_[static_cast<unsigned char>(word[i])],
                           static_cast<int32_t>(i) - 1,
                           i + 1 < word.size() ? static_cast<int32_t>(i + 1) : -1, 1});
    merge_all(s.symbols, merges_);
    std::vector<int32_t> ids;
    for (const Symbol& sym : s.symbols)
      if (sym.len) ids.push_back(sym.id);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }

  // Whether an occurrence of an added token in text spans position p.
  bool straddles_added(std::string_view text, size_t p) const {
    for (const std::string& t : added_)
      for (size_t k = 1; k < t.size(); ++k)
        if (p >= k && p - k + t.size() <= text.size() && text.compare(p - k, t.size(), t) == 0)
          return true;
    return false;
  }

  std::vector<std::string> pieces_;  // by id: the vocabulary, then added tokens beyond it
  std::vector<PieceType> types_;
  std::vector<std::string> bytes_;  // by id: what decode writes
  std::array<int32_t, 256> byte_ids_{};
  MergeMap merges_;
  std::vector<std::pair<std::string, std::string>> merge_text_;
  bool ignore_merges_ = false;
  std::unordered_map<std::string, int> vocab_ids_;  // with ignore_merges only
  AddedMatcher raw_, normalized_;
  std::vector<std::string> added_;
  std::unordered_map<int, bool> special_;
  int unk_id_ = -1, eos_id_ = -1;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace

std::unique_ptr<TokenizerModel> make_byte_level_bpe_model(const std::string& json,
                                                          const std::string& origin) {
  return std::make_unique<ByteLevelBpeModel>(parse_tokenizer_json(json, origin), origin);
}

}  // namespace shardlm
