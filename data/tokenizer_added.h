// Finding added tokens (e.g. <|endoftext|>, runs of spaces) in text before pre-tokenisation, with the
// semantics of HuggingFace `tokenizers` AddedVocabulary: leftmost-longest, non-overlapping matches, then
// the single_word / lstrip / rstrip rules applied to each match.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rwkv::data {

struct AddedToken {
  std::int32_t id = -1;
  std::string content;
  bool special = false;      // dropped by decode(..., skip_special_tokens = true)
  bool single_word = false;  // only matches when no word character (regex \w) touches it
  bool lstrip = false;       // also swallows the whitespace before it
  bool rstrip = false;       // also swallows the whitespace after it
  bool normalized = true;    // matched in the normalised text (else in the raw text, before normalising)
};

// One piece of a split: text[begin, end) is either plain text (token_id < 0) or one added token.
struct TextPiece {
  std::size_t begin;
  std::size_t end;
  std::int32_t token_id;
};

class AddedTokenSplitter {
public:
  AddedTokenSplitter() = default;
  // tokens: the ones this splitter matches; their content is matched as given (normalise it beforehand
  // for tokens that are matched in normalised text). Empty contents are ignored.
  explicit AddedTokenSplitter(std::vector<AddedToken> tokens);

  bool empty() const { return tokens_.empty(); }

  // Replaces pieces with a split of text that covers it completely, in order; empty text gives no pieces.
  void split(std::string_view text, std::vector<TextPiece>& pieces) const;

private:
  // Byte trie over the token contents; the root has a dense child table since every byte of the text
  // is looked up there, deeper nodes keep a short list of (byte, child).
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;
    std::int32_t token = -1;  // index into tokens_ when a token ends here
  };
  // Index of the longest token starting at text[pos], or -1; sets length.
  std::int32_t longest_match(std::string_view text, std::size_t pos, std::size_t& length) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;                        // nodes_[0] is the root (its children live in root_children_)
  std::array<std::int32_t, 256> root_children_{};  // 0 = none
};

}  // namespace rwkv::data
