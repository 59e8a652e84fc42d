// Byte-level BPE tokenizer loaded from a HuggingFace tokenizer.json of the GPT-2 / GPT-NeoX kind (the
// RWKV-4 Pile models use GPT-NeoX-20B's 20B_tokenizer.json). It reproduces HuggingFace `tokenizers` ids:
//   added tokens are split out first (those with normalized = false from the raw text, the others after
//   normalising), the rest is NFC-normalised, split by the GPT-2 pre-tokenizer, and BPE-merged per piece.
// A Tokenizer is immutable after loading, cheap to copy (shared), and safe to use from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer_added.h"

namespace rwkv::data {

class Tokenizer {
public:
  // Throws rwkv::Error naming the file (and the JSON field) when it cannot be read or is not a
  // byte-level BPE tokenizer.json that this implementation reproduces exactly.
  static Tokenizer from_file(const std::string& path);
  // source_name is used in error messages.
  static Tokenizer from_json(std::string_view json_text, std::string_view source_name = "tokenizer.json");

  // Token ids of text, which must be valid UTF-8 (throws otherwise, giving the byte offset).
  std::vector<std::int32_t> encode(std::string_view text) const;
  // The same, appending to out.
  void encode(std::string_view text, std::vector<std::int32_t>& out) const;

  // Text of the ids: byte-level tokens turned back into bytes, added tokens verbatim, and byte sequences
  // that are not valid UTF-8 replaced by U+FFFD. Throws for an id outside [0, vocab_size()).
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const;

  // Cuts text into consecutive pieces that tokenize independently, so that encode(text) equals the
  // concatenation of encode(piece): for encoding one large document on several threads. Pieces are cut
  // before a '\n' that follows a non-whitespace character (there the pre-tokenizer, the normaliser and the
  // added-token matching all start afresh) and are at least min_bytes long, except maybe the last. Returns
  // the whole text as one piece when the tokenizer's settings make cutting unsafe (add_prefix_space, no
  // regex split, added tokens with rstrip or containing '\n').
  std::vector<std::string_view> independent_pieces(std::string_view text, std::size_t min_bytes) const;

  // What the normaliser makes of text (NFC, or text itself when the file has no normaliser).
  std::string normalize(std::string_view text) const;

  // Number of ids, added tokens included (50277 for the 20B tokenizer); ids are 0..vocab_size()-1.
  std::int32_t vocab_size() const;
  // Token strings as written in tokenizer.json (byte-level form, e.g. "Ġthe").
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  const std::string& id_to_token(std::int32_t id) const;
  const std::vector<AddedToken>& added_tokens() const;

private:
  struct Model;
  explicit Tokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  void encode_plain(std::string_view text, std::vector<std::int32_t>& out) const;

  std::shared_ptr<const Model> model_;
};

}  // namespace rwkv::data
