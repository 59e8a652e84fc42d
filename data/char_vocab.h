// Character-level vocabulary of RWKV-LM's "utf-8" data type: the sorted set of distinct Unicode code
// points of the training text, id = rank in that order. Saved as vocab.json {"0": "\n", "1": " ", ...}
// (RWKV-LM's format) so a run can decode its samples and a resumed run keeps the same ids.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace rwkv::data {

class CharVocab {
public:
  // id -> code point; code points must be distinct valid Unicode scalar values.
  explicit CharVocab(std::vector<char32_t> characters);

  std::size_t size() const { return characters_.size(); }
  const std::vector<char32_t>& characters() const { return characters_; }
  char32_t character(std::int32_t id) const;
  // The id of a code point, or std::nullopt when it is not in the vocabulary.
  std::optional<std::int32_t> id_of(char32_t code_point) const {
    if (code_point >= ids_.size() || ids_[code_point] < 0) return std::nullopt;
    return ids_[code_point];
  }
  // Text of a sequence of ids; throws for an id outside the vocabulary.
  std::string decode(std::span<const std::int32_t> ids) const;

  // {"0": "\n", "1": " ", ...} as RWKV-LM's json.dumps(..., ensure_ascii=False) writes it.
  std::string to_json() const;
  // Writes to_json() to path (through a temporary file and rename, so a reader never sees half a file).
  void save(const std::string& path) const;
  // Reads a vocab.json written by save() or by RWKV-LM; errors name the file and the bad entry.
  static CharVocab load(const std::string& path);

  bool operator==(const CharVocab& other) const { return characters_ == other.characters_; }

private:
  std::vector<char32_t> characters_;
  std::vector<std::int32_t> ids_;  // indexed by code point, -1 when absent
};

}  // namespace rwkv::data
