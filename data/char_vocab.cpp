#include "data/char_vocab.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/durable_file.h"
#include "core/error.h"
#include "data/json.h"
#include "data/utf8_codepoints.h"

namespace rwkv::data {

CharVocab::CharVocab(std::vector<char32_t> characters) : characters_(std::move(characters)) {
  char32_t largest = 0;
  for (char32_t c : characters_) {
    RWKV_CHECK(c <= kMaxCodePoint && !(c >= 0xD800 && c <= 0xDFFF),
               "character vocabulary: ", static_cast<std::uint32_t>(c), " is not a Unicode scalar value");
    largest = std::max(largest, c);
  }
  ids_.assign(characters_.empty() ? 0 : std::size_t(largest) + 1, -1);
  for (std::size_t id = 0; id < characters_.size(); ++id) {
    RWKV_CHECK(ids_[characters_[id]] < 0, "character vocabulary: ", describe_code_point(characters_[id]),
               " appears twice (ids ", ids_[characters_[id]], " and ", id, ")");
    ids_[characters_[id]] = static_cast<std::int32_t>(id);
  }
}

char32_t CharVocab::character(std::int32_t id) const {
  RWKV_CHECK(id >= 0 && static_cast<std::size_t>(id) < characters_.size(), "character vocabulary: id ", id,
             " is outside [0, ", characters_.size(), ")");
  return characters_[static_cast<std::size_t>(id)];
}

std::string CharVocab::decode(std::span<const std::int32_t> ids) const {
  std::string text;
  for (std::int32_t id : ids) append_utf8(text, character(id));
  return text;
}

std::string CharVocab::to_json() const {
  std::string text = "{";
  for (std::size_t id = 0; id < characters_.size(); ++id) {
    std::string character_utf8;
    append_utf8(character_utf8, characters_[id]);
    text += (id == 0 ? "\"" : ", \"") + std::to_string(id) + "\": " + json::quote(character_utf8);
  }
  return text + "}";
}

void CharVocab::save(const std::string& path) const {
  replace_file_atomically(path, to_json());
}

CharVocab CharVocab::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RWKV_CHECK(in, "cannot open character vocabulary ", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  json::Value root;
  try {
    root = json::parse(buffer.str());
  } catch (const Error& e) {
    RWKV_FAIL(path, ": not valid JSON: ", e.what());
  }
  RWKV_CHECK(root.is_object(), path, ": expected a JSON object {\"id\": \"character\", ...}");
  const json::Members& members = root.items();
  std::vector<char32_t> characters(members.size());
  std::vector<bool> seen(members.size(), false);
  for (const auto& [key, value] : members) {
    std::size_t id = 0;
    std::size_t used = 0;
    try {
      id = std::stoul(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    RWKV_CHECK(used == key.size() && !key.empty() && key[0] != '-' && key[0] != '+', path, ": key \"", key,
               "\" is not a token id");
    RWKV_CHECK(id < members.size(), path, ": id ", id, " is outside [0, ", members.size(), ") (ids must be 0..n-1)");
    RWKV_CHECK(!seen[id], path, ": id ", id, " appears twice");
    RWKV_CHECK(value.is_string(), path, ": the value of id ", id, " is not a string");
    const std::string& text = value.as_string();
    std::size_t pos = 0;
    char32_t code_point = 0;
    RWKV_CHECK(!text.empty() && next_code_point(text, pos, code_point) && pos == text.size(), path,
               ": the value of id ", id, " is not exactly one character");
    characters[id] = code_point;
    seen[id] = true;
  }
  try {
    return CharVocab(std::move(characters));
  } catch (const Error& e) {
    RWKV_FAIL(path, ": ", e.what());
  }
}

}  // namespace rwkv::data
