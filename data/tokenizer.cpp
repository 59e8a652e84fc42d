#include "data/tokenizer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/error.h"
#include "data/json.h"
#include "data/tokenizer_bpe.h"
#include "data/tokenizer_pretokenize.h"
#include "data/unicode.h"

namespace rwkv::data {

namespace {

// Token string -> id over the id-indexed token strings; open addressing, a slot holds id + 1 (0 = empty).
class TokenIndex {
public:
  void reserve(std::size_t tokens) { slots_.assign(std::bit_ceil(std::max<std::size_t>(tokens * 2, 16)), 0); }

  // Maps tokens[id] to id; an existing entry for the same string is replaced only when replace is set.
  void insert(const std::vector<std::string>& tokens, std::int32_t id, bool replace) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t slot = std::hash<std::string_view>{}(tokens[id]) & mask;
    for (; slots_[slot] != 0; slot = (slot + 1) & mask) {
      if (tokens[slots_[slot] - 1] == tokens[id]) {
        if (replace) slots_[slot] = static_cast<std::uint32_t>(id) + 1;
        return;
      }
    }
    slots_[slot] = static_cast<std::uint32_t>(id) + 1;
  }

  std::int32_t find(const std::vector<std::string>& tokens, std::string_view token) const {
    const std::size_t mask = slots_.size() - 1;
    const std::size_t hash = std::hash<std::string_view>{}(token);
    for (std::size_t slot = hash & mask; slots_[slot] != 0; slot = (slot + 1) & mask) {
      if (tokens[slots_[slot] - 1] == token) return static_cast<std::int32_t>(slots_[slot] - 1);
    }
    return -1;
  }

private:
  std::vector<std::uint32_t> slots_;
};

}  // namespace

struct Tokenizer::Model {
  bool nfc = false;
  bool add_prefix_space = false;
  bool use_regex = true;
  bool can_cut = false;  // independent_pieces() may cut (see there)
  BpeModel bpe;
  AddedTokenSplitter raw_splitter;         // added tokens with normalized = false
  AddedTokenSplitter normalized_splitter;  // the others, their content normalised
  std::vector<AddedToken> added_tokens;
  std::vector<std::string> tokens;       // id -> token as written in the file
  std::vector<std::string> token_bytes;  // id -> what decode() emits for it
  std::vector<bool> special;             // id -> special added token
  TokenIndex token_ids;
};

namespace {

// GPT-2's reversible byte <-> printable character map: printable Latin-1 bytes stand for themselves, the
// others take the code points 256, 257, ... in byte order.
std::array<char32_t, 256> byte_to_char_table() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
    table[byte] = printable ? static_cast<char32_t>(byte) : next++;
  }
  return table;
}

// Loader with the file name and the JSON path at hand for its error messages.
class Loader {
public:
  explicit Loader(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(std::string_view field, const std::string& message) const {
    RWKV_FAIL(source_, ": ", field, ": ", message);
  }

  const json::Value* optional(const json::Value& object, std::string_view key) const {
    const json::Value* value = object.find(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  }
  const json::Value& required(const json::Value& object, std::string_view key, std::string_view field) const {
    const json::Value* value = object.find(key);
    if (value == nullptr) fail(field, "missing");
    return *value;
  }
  void expect(const json::Value& value, json::Value::Kind kind, std::string_view field) const {
    if (value.kind() != kind) {
      fail(field,
           std::string("expected ") + json::Value::kind_name(kind) + ", found " + json::Value::kind_name(value.kind()));
    }
  }
  const std::string& string(const json::Value& value, std::string_view field) const {
    expect(value, json::Value::Kind::string, field);
    return value.as_string();
  }
  bool boolean(const json::Value& object, std::string_view key, bool fallback, std::string_view field) const {
    const json::Value* value = optional(object, key);
    if (value == nullptr) return fallback;
    expect(*value, json::Value::Kind::boolean, field);
    return value->as_bool();
  }
  std::int32_t id(const json::Value& value, std::string_view field) const {
    if (!value.is_integer() || value.as_int64() < 0 || value.as_int64() > 0x7FFFFFFE) {
      fail(field, "expected a token id (an integer from 0 to 2^31-2)");
    }
    return static_cast<std::int32_t>(value.as_int64());
  }
  // The "type" of a component object, which must be one of the accepted ones.
  void expect_type(const json::Value& component, std::string_view field, std::string_view accepted) const {
    expect(component, json::Value::Kind::object, field);
    const std::string& type =
        string(required(component, "type", std::string(field) + ".type"), std::string(field) + ".type");
    if (type != accepted) {
      fail(std::string(field) + ".type", "\"" + type + "\" is not supported (expected \"" + std::string(accepted) +
                                             "\": only byte-level BPE tokenizers of the GPT-2 / GPT-NeoX kind are)");
    }
  }

private:
  std::string source_;
};

// True when the character that ends at text[end) is well formed and not whitespace.
bool ends_with_non_whitespace(std::string_view text, std::size_t end) {
  std::size_t start = end;
  while (start > 0 && end - start < 4) {
    --start;
    if ((static_cast<unsigned char>(text[start]) & 0xC0) != 0x80) break;
  }
  if (start == end || unicode::find_invalid_utf8(text.substr(start, end - start)) != std::string_view::npos) {
    return false;
  }
  std::size_t length;
  const char32_t code_point = unicode::decode_utf8(text, start, length);
  return start + length == end && unicode::char_class(code_point) != unicode::kWhitespace;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  RWKV_CHECK(file, "tokenizer: cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream content;
  content << file.rdbuf();
  RWKV_CHECK(file.good() || file.eof(), "tokenizer: error reading '", path, "'");
  return std::move(content).str();
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::string& path) { return from_json(read_file(path), path); }

Tokenizer Tokenizer::from_json(std::string_view json_text, std::string_view source_name) {
  const Loader load(source_name);
  json::Value root;
  try {
    root = json::parse(json_text);
  } catch (const Error& error) {
    RWKV_FAIL(source_name, ": ", error.what());
  }
  load.expect(root, json::Value::Kind::object, "top level");
  auto model = std::make_shared<Model>();

  // ---- pipeline components: only the ones this implementation reproduces exactly are accepted.
  for (const char* key : {"truncation", "padding"}) {
    if (load.optional(root, key) != nullptr) load.fail(key, "must be null (truncation and padding are not supported)");
  }
  if (const json::Value* normalizer = load.optional(root, "normalizer")) {
    load.expect_type(*normalizer, "normalizer", "NFC");
    model->nfc = true;
  }
  const json::Value& pre_tokenizer = load.required(root, "pre_tokenizer", "pre_tokenizer");
  load.expect_type(pre_tokenizer, "pre_tokenizer", "ByteLevel");
  model->add_prefix_space = load.boolean(pre_tokenizer, "add_prefix_space", true, "pre_tokenizer.add_prefix_space");
  model->use_regex = load.boolean(pre_tokenizer, "use_regex", true, "pre_tokenizer.use_regex");
  if (const json::Value* decoder = load.optional(root, "decoder")) load.expect_type(*decoder, "decoder", "ByteLevel");
  if (const json::Value* post = load.optional(root, "post_processor")) {
    load.expect_type(*post, "post_processor", "ByteLevel");
  }

  // ---- model
  const json::Value& bpe = load.required(root, "model", "model");
  load.expect_type(bpe, "model", "BPE");
  if (load.optional(bpe, "dropout") != nullptr) {
    load.fail("model.dropout", "must be null (BPE dropout is not supported)");
  }
  if (load.optional(bpe, "unk_token") != nullptr) {
    load.fail("model.unk_token", "must be null (a byte-level BPE has no unknown token)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value* value = load.optional(bpe, key);
    if (value != nullptr && !(value->is_string() && value->as_string().empty())) {
      load.fail(std::string("model.") + key, "must be null (not supported)");
    }
  }
  if (load.boolean(bpe, "byte_fallback", false, "model.byte_fallback")) {
    load.fail("model.byte_fallback", "must be false (not supported)");
  }
  if (load.boolean(bpe, "ignore_merges", false, "model.ignore_merges")) {
    load.fail("model.ignore_merges", "must be false (not supported)");
  }

  const json::Value& vocab = load.required(bpe, "vocab", "model.vocab");
  load.expect(vocab, json::Value::Kind::object, "model.vocab");
  std::int32_t max_id = -1;
  std::vector<std::pair<std::int32_t, const std::string*>> vocab_entries;
  vocab_entries.reserve(vocab.items().size());
  for (const auto& [token, value] : vocab.items()) {
    const std::int32_t id = load.id(value, "model.vocab[\"" + token + "\"]");
    vocab_entries.emplace_back(id, &token);
    max_id = std::max(max_id, id);
  }

  // ---- added tokens
  if (const json::Value* added = load.optional(root, "added_tokens")) {
    load.expect(*added, json::Value::Kind::array, "added_tokens");
    for (std::size_t i = 0; i < added->as_array().size(); ++i) {
      const json::Value& entry = added->as_array()[i];
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      load.expect(entry, json::Value::Kind::object, field);
      AddedToken token;
      token.id = load.id(load.required(entry, "id", field + ".id"), field + ".id");
      token.content = load.string(load.required(entry, "content", field + ".content"), field + ".content");
      if (unicode::find_invalid_utf8(token.content) != std::string::npos) {
        load.fail(field + ".content", "invalid UTF-8");
      }
      token.special = load.boolean(entry, "special", false, field + ".special");
      token.single_word = load.boolean(entry, "single_word", false, field + ".single_word");
      token.lstrip = load.boolean(entry, "lstrip", false, field + ".lstrip");
      token.rstrip = load.boolean(entry, "rstrip", false, field + ".rstrip");
      token.normalized = load.boolean(entry, "normalized", !token.special, field + ".normalized");
      max_id = std::max(max_id, token.id);
      model->added_tokens.push_back(std::move(token));
    }
  }

  // ---- id tables: ids must be dense, each with one token.
  if (max_id < 0) load.fail("model.vocab", "is empty");
  const auto vocab_size = static_cast<std::size_t>(max_id) + 1;
  model->tokens.assign(vocab_size, {});
  model->special.assign(vocab_size, false);
  std::vector<bool> assigned(vocab_size, false);
  model->token_ids.reserve(vocab_size);
  for (const auto& [id, token] : vocab_entries) {
    if (assigned[id]) load.fail("model.vocab", "id " + std::to_string(id) + " is used twice");
    assigned[id] = true;
    model->tokens[id] = *token;
    model->token_ids.insert(model->tokens, id, /*replace=*/false);
  }
  for (std::size_t i = 0; i < model->added_tokens.size(); ++i) {
    const AddedToken& token = model->added_tokens[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (assigned[token.id] && model->tokens[token.id] != token.content) {
      load.fail(field, "id " + std::to_string(token.id) + " is already the token \"" + model->tokens[token.id] + "\"");
    }
    assigned[token.id] = true;
    model->tokens[token.id] = token.content;
    model->token_ids.insert(model->tokens, token.id, /*replace=*/true);  // an added token's id wins, as in tokenizers
    model->special[token.id] = token.special;
  }
  for (std::size_t id = 0; id < vocab_size; ++id) {
    if (!assigned[id]) load.fail("model.vocab", "no token has id " + std::to_string(id) + " (ids must be dense)");
  }
  // The BPE model only knows model.vocab (not the added tokens), as in tokenizers.
  const auto vocab_id = [&](std::string_view token) -> std::int32_t {
    const json::Value* id = vocab.find(token);
    return id == nullptr ? -1 : static_cast<std::int32_t>(id->as_int64());
  };

  // ---- byte-level alphabet and decode bytes
  const std::array<char32_t, 256> byte_to_char = byte_to_char_table();
  std::array<std::int16_t, 0x200> char_to_byte;  // the alphabet's code points are all below U+0200
  char_to_byte.fill(-1);
  std::array<std::int32_t, 256> byte_ids{};
  for (int byte = 0; byte < 256; ++byte) {
    char_to_byte[byte_to_char[byte]] = static_cast<std::int16_t>(byte);
    std::string token;
    unicode::append_utf8(token, byte_to_char[byte]);
    byte_ids[byte] = vocab_id(token);
  }
  if (byte_ids[static_cast<unsigned char>('a')] < 0 || byte_ids[static_cast<unsigned char>(' ')] < 0) {
    load.fail("model.vocab", "has no byte-level tokens (\"a\", \"\xC4\xA0\"): not a byte-level BPE vocabulary");
  }
  model->token_bytes.resize(vocab_size);
  for (std::size_t id = 0; id < vocab_size; ++id) {
    // As the ByteLevel decoder: map each character back to its byte, unless one of them is not in the
    // byte-level alphabet (e.g. an added token of plain spaces), in which case the token is used as is.
    const std::string& token = model->tokens[id];
    if (unicode::find_invalid_utf8(token) != std::string::npos) {
      load.fail("model.vocab", "token " + std::to_string(id) + " is not valid UTF-8");
    }
    std::string bytes;
    bool all_mapped = true;
    for (std::size_t pos = 0; pos < token.size();) {
      std::size_t length;
      const char32_t code_point = unicode::decode_utf8(token, pos, length);
      if (code_point >= char_to_byte.size() || char_to_byte[code_point] < 0) {
        all_mapped = false;
        break;
      }
      bytes += static_cast<char>(char_to_byte[code_point]);
      pos += length;
    }
    model->token_bytes[id] = all_mapped ? std::move(bytes) : token;
  }

  // ---- merges
  const json::Value& merges_value = load.required(bpe, "merges", "model.merges");
  load.expect(merges_value, json::Value::Kind::array, "model.merges");
  const auto& merge_entries = merges_value.as_array();
  std::vector<BpeMerge> merges;
  merges.reserve(merge_entries.size());
  std::string merged;
  for (std::size_t rank = 0; rank < merge_entries.size(); ++rank) {
    const json::Value& entry = merge_entries[rank];
    const auto field = [rank] { return "model.merges[" + std::to_string(rank) + "]"; };
    std::string_view left;
    std::string_view right;
    if (entry.is_string()) {
      const std::string& text = entry.as_string();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        load.fail(field(), "\"" + text + "\" is not two tokens separated by one space");
      }
      left = std::string_view(text).substr(0, space);
      right = std::string_view(text).substr(space + 1);
    } else if (entry.is_array() && entry.as_array().size() == 2) {
      left = load.string(entry.as_array()[0], field() + "[0]");
      right = load.string(entry.as_array()[1], field() + "[1]");
    } else {
      load.fail(field(), "expected \"left right\" or [\"left\", \"right\"]");
    }
    merged.assign(left);
    merged += right;
    const std::int32_t left_id = vocab_id(left);
    const std::int32_t right_id = vocab_id(right);
    const std::int32_t merged_id = vocab_id(merged);
    if (left_id < 0) load.fail(field(), "token \"" + std::string(left) + "\" is not in model.vocab");
    if (right_id < 0) load.fail(field(), "token \"" + std::string(right) + "\" is not in model.vocab");
    if (merged_id < 0) load.fail(field(), "merged token \"" + merged + "\" is not in model.vocab");
    merges.push_back({left_id, right_id, merged_id});
  }
  model->bpe = BpeModel(byte_ids, merges);

  // ---- added token matchers
  std::vector<AddedToken> raw;
  std::vector<AddedToken> normalized;
  for (const AddedToken& token : model->added_tokens) {
    if (!token.normalized) {
      raw.push_back(token);
    } else {
      AddedToken copy = token;
      if (model->nfc) copy.content = unicode::to_nfc(copy.content);
      normalized.push_back(std::move(copy));
    }
  }
  model->can_cut = !model->add_prefix_space && model->use_regex;
  for (const AddedToken& token : model->added_tokens) {
    if (token.rstrip || token.content.find('\n') != std::string::npos) model->can_cut = false;
  }
  model->raw_splitter = AddedTokenSplitter(std::move(raw));
  model->normalized_splitter = AddedTokenSplitter(std::move(normalized));
  return Tokenizer(std::move(model));
}

// ---- encoding -------------------------------------------------------------------------------------

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  encode(text, ids);
  return ids;
}

void Tokenizer::encode(std::string_view text, std::vector<std::int32_t>& out) const {
  const std::size_t invalid = unicode::find_invalid_utf8(text);
  RWKV_CHECK(invalid == std::string_view::npos, "tokenizer: the text is not valid UTF-8 (at byte offset ", invalid,
             ")");
  const Model& model = *model_;
  thread_local std::vector<TextPiece> raw_pieces;
  thread_local std::vector<TextPiece> normalized_pieces;
  thread_local std::string normalized_text;
  model.raw_splitter.split(text, raw_pieces);
  for (const TextPiece& raw : raw_pieces) {
    if (raw.token_id >= 0) {
      out.push_back(raw.token_id);
      continue;
    }
    std::string_view segment = text.substr(raw.begin, raw.end - raw.begin);
    if (model.nfc && !unicode::nfc_quick_check(segment)) {
      normalized_text = unicode::to_nfc(segment);
      segment = normalized_text;
    }
    model.normalized_splitter.split(segment, normalized_pieces);
    for (const TextPiece& piece : normalized_pieces) {
      if (piece.token_id >= 0) {
        out.push_back(piece.token_id);
      } else {
        encode_plain(segment.substr(piece.begin, piece.end - piece.begin), out);
      }
    }
  }
}

// Pre-tokenises and BPE-encodes text that holds no added tokens.
void Tokenizer::encode_plain(std::string_view text, std::vector<std::int32_t>& out) const {
  const Model& model = *model_;
  std::string prefixed;
  if (model.add_prefix_space && !text.empty() && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed += ' ';
    prefixed += text;
    text = prefixed;
  }
  if (!model.use_regex) {
    if (!text.empty()) model.bpe.encode_word(text, out);
    return;
  }
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = gpt2_pretoken_end(text, pos);
    model.bpe.encode_word(text.substr(pos, end - pos), out);
    pos = end;
  }
}

std::vector<std::string_view> Tokenizer::independent_pieces(std::string_view text, std::size_t min_bytes) const {
  const std::size_t step = std::max<std::size_t>(min_bytes, 1);
  std::vector<std::string_view> pieces;
  std::size_t begin = 0;
  for (std::size_t pos = step; model_->can_cut && pos < text.size();) {
    const std::size_t newline = text.find('\n', pos);
    if (newline == std::string_view::npos) break;
    pos = newline + 1;
    if (ends_with_non_whitespace(text, newline)) {
      pieces.push_back(text.substr(begin, newline - begin));
      begin = newline;
      pos = newline + step;
    }
  }
  pieces.push_back(text.substr(begin));
  return pieces;
}

// ---- decoding and lookups ---------------------------------------------------------------------------

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  const Model& model = *model_;
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (const std::int32_t id : ids) {
    RWKV_CHECK(id >= 0 && id < vocab_size(), "tokenizer: cannot decode id ", id, " (the vocabulary has ids 0..",
               vocab_size() - 1, ")");
    if (skip_special_tokens && model.special[id]) continue;
    bytes += model.token_bytes[id];
  }
  if (unicode::find_invalid_utf8(bytes) == std::string::npos) return bytes;
  return unicode::to_valid_utf8(bytes);
}

std::string Tokenizer::normalize(std::string_view text) const {
  const std::size_t invalid = unicode::find_invalid_utf8(text);
  RWKV_CHECK(invalid == std::string_view::npos, "tokenizer: the text is not valid UTF-8 (at byte offset ", invalid,
             ")");
  if (!model_->nfc || unicode::nfc_quick_check(text)) return std::string(text);
  return unicode::to_nfc(text);
}

std::int32_t Tokenizer::vocab_size() const { return static_cast<std::int32_t>(model_->tokens.size()); }

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const std::int32_t id = model_->token_ids.find(model_->tokens, token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string& Tokenizer::id_to_token(std::int32_t id) const {
  RWKV_CHECK(id >= 0 && id < vocab_size(), "tokenizer: no token has id ", id, " (the vocabulary has ids 0..",
             vocab_size() - 1, ")");
  return model_->tokens[id];
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return model_->added_tokens; }

}  // namespace rwkv::data
