#include "data/tokenizer_added.h"

#include <algorithm>

#include "data/unicode.h"

namespace rwkv::data {

namespace {

// Start of the code point that ends at text[end) (text is valid UTF-8, end > 0).
std::size_t previous_code_point(std::string_view text, std::size_t end) {
  std::size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

char32_t code_point_at(std::string_view text, std::size_t pos) {
  std::size_t length;
  return unicode::decode_utf8(text, pos, length);
}

bool is_whitespace_at(std::string_view text, std::size_t pos, std::size_t& length) {
  return unicode::char_class(unicode::decode_utf8(text, pos, length)) == unicode::kWhitespace;
}

// Rust's str::trim_end / trim_start (White_Space), as byte offsets.
std::size_t trim_end(std::string_view text, std::size_t end) {
  while (end > 0) {
    const std::size_t start = previous_code_point(text, end);
    std::size_t length;
    if (!is_whitespace_at(text, start, length)) break;
    end = start;
  }
  return end;
}

std::size_t trim_start(std::string_view text, std::size_t begin) {
  std::size_t length;
  while (begin < text.size() && is_whitespace_at(text, begin, length)) begin += length;
  return begin;
}

}  // namespace

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens) {
  nodes_.emplace_back();  // root
  for (auto& token : tokens) {
    if (token.content.empty()) continue;
    const auto index = static_cast<std::int32_t>(tokens_.size());
    std::int32_t node = 0;
    for (std::size_t i = 0; i < token.content.size(); ++i) {
      const auto byte = static_cast<unsigned char>(token.content[i]);
      std::int32_t child = -1;
      if (node == 0) {
        if (root_children_[byte] != 0) child = root_children_[byte];
      } else {
        for (const auto& [edge, target] : nodes_[node].children) {
          if (edge == byte) child = target;
        }
      }
      if (child < 0) {
        child = static_cast<std::int32_t>(nodes_.size());
        nodes_.emplace_back();
        if (node == 0) {
          root_children_[byte] = child;
        } else {
          nodes_[node].children.emplace_back(byte, child);
        }
      }
      node = child;
    }
    // Two added tokens with the same content: the first one wins, like a map keyed by content would.
    if (nodes_[node].token < 0) nodes_[node].token = index;
    tokens_.push_back(std::move(token));
  }
}

std::int32_t AddedTokenSplitter::longest_match(std::string_view text, std::size_t pos, std::size_t& length) const {
  std::int32_t node = root_children_[static_cast<unsigned char>(text[pos])];
  std::int32_t best = -1;
  std::size_t i = pos + 1;
  while (node > 0) {
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      length = i - pos;
    }
    if (i >= text.size()) break;
    const auto byte = static_cast<unsigned char>(text[i]);
    std::int32_t next = 0;
    for (const auto& [edge, target] : nodes_[node].children) {
      if (edge == byte) {
        next = target;
        break;
      }
    }
    node = next;
    ++i;
  }
  return best;
}

void AddedTokenSplitter::split(std::string_view text, std::vector<TextPiece>& pieces) const {
  pieces.clear();
  std::size_t start_offset = 0;
  if (!tokens_.empty()) {
    for (std::size_t pos = 0; pos < text.size();) {
      if (root_children_[static_cast<unsigned char>(text[pos])] == 0) {
        ++pos;
        continue;
      }
      std::size_t length = 0;
      const std::int32_t index = longest_match(text, pos, length);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& token = tokens_[index];
      std::size_t start = pos;
      std::size_t stop = pos + length;
      pos = stop;  // the search goes on after the raw match, as in tokenizers
      if (token.single_word) {
        const bool space_before =
            start == 0 || !unicode::is_word_character(code_point_at(text, previous_code_point(text, start)));
        const bool space_after = stop == text.size() || !unicode::is_word_character(code_point_at(text, stop));
        if (!space_before || !space_after) continue;
      }
      if (token.lstrip) start = std::max(trim_end(text, start), start_offset);
      if (token.rstrip) stop = trim_start(text, stop);
      if (start > start_offset) pieces.push_back({start_offset, start, -1});
      pieces.push_back({start, stop, token.id});
      start_offset = stop;
    }
  }
  if (start_offset < text.size()) pieces.push_back({start_offset, text.size(), -1});
}

}  // namespace rwkv::data
