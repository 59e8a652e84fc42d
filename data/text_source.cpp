#include "data/text_source.h"

#include <filesystem>

#include "core/error.h"
#include "data/char_vocab.h"
#include "data/mapped_file.h"
#include "data/utf8_codepoints.h"

namespace rwkv::data {
namespace {

std::string hex_context(std::string_view text, std::size_t pos) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = pos; i < text.size() && i < pos + 4; ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (!hex.empty()) hex += ' ';
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

// Calls on_char(code_point, byte_offset) for every character of a file's text after newline
// translation; throws on invalid UTF-8.
template <typename OnChar>
void for_each_character(const MappedFile& file, OnChar&& on_char) {
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    char32_t code_point = 0;
    if (!next_code_point(text, pos, code_point)) {
      RWKV_FAIL(file.path(), ": invalid UTF-8 at byte offset ", start, " (bytes ", hex_context(text, start),
                "); use --data_type bytes for binary data");
    }
    if (code_point == U'\r') {
      if (pos < text.size() && text[pos] == '\n') ++pos;
      code_point = U'\n';
    }
    on_char(code_point, start);
  }
}

template <typename Id>
TokenShard encode_file(const std::shared_ptr<const MappedFile>& file, const CharVocab& vocab,
                       const std::string& vocab_path) {
  auto ids = std::make_shared<std::vector<Id>>();
  ids->reserve(file->size());  // an upper bound: at least one byte per character
  for_each_character(*file, [&](char32_t code_point, std::size_t offset) {
    const std::optional<std::int32_t> id = vocab.id_of(code_point);
    RWKV_CHECK(id.has_value(), file->path(), ": character ", describe_code_point(code_point), " at byte offset ",
               offset, " is not in ", vocab_path,
               " (written for other text); delete that file or use another directory to build a new vocabulary");
    ids->push_back(static_cast<Id>(*id));
  });
  ids->shrink_to_fit();
  TokenShard shard;
  shard.path = file->path();
  shard.dtype = sizeof(Id) == 2 ? TokenDtype::uint16 : TokenDtype::int32;
  shard.tokens = reinterpret_cast<const std::byte*>(ids->data());
  shard.size = ids->size();
  shard.owner = std::move(ids);
  return shard;
}

}  // namespace

TokenShard open_bytes_shard(const std::string& path) {
  std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  TokenShard shard;
  shard.path = path;
  shard.dtype = TokenDtype::uint8;
  shard.tokens = file->data();
  shard.size = file->size();
  shard.owner = std::move(file);
  return shard;
}

TokenSource open_char_text(const std::vector<std::string>& paths, const std::string& vocab_dir) {
  std::vector<std::shared_ptr<const MappedFile>> files;
  std::vector<bool> present(std::size_t(kMaxCodePoint) + 1, false);
  for (const std::string& path : paths) {
    files.push_back(MappedFile::open(path));
    for_each_character(*files.back(), [&](char32_t code_point, std::size_t) { present[code_point] = true; });
  }

  const std::string vocab_path =
      vocab_dir.empty() ? std::string() : (std::filesystem::path(vocab_dir) / "vocab.json").string();
  std::shared_ptr<const CharVocab> vocab;
  if (!vocab_path.empty() && std::filesystem::exists(vocab_path)) {
    vocab = std::make_shared<const CharVocab>(CharVocab::load(vocab_path));
  } else {
    std::vector<char32_t> characters;
    for (char32_t c = 0; c <= kMaxCodePoint; ++c) {
      if (present[c]) characters.push_back(c);
    }
    vocab = std::make_shared<const CharVocab>(std::move(characters));
    if (!vocab_path.empty()) {
      std::filesystem::create_directories(vocab_dir);
      vocab->save(vocab_path);
    }
  }

  std::vector<TokenShard> shards;
  for (const auto& file : files) {
    shards.push_back(vocab->size() <= 65536 ? encode_file<std::uint16_t>(file, *vocab, vocab_path)
                                            : encode_file<std::int32_t>(file, *vocab, vocab_path));
  }
  return TokenSource("utf-8", std::move(shards), vocab->size(), vocab);
}

}  // namespace rwkv::data
