// Raw text files as token data.
//   bytes: every byte is a token (vocab 256); the file is memory-mapped, nothing is copied.
//   utf-8: RWKV-LM's character-level data type. The vocabulary is the sorted set of distinct code points
//          of all files, id = rank (see char_vocab.h). Like RWKV-LM, which reads the file in Python text
//          mode, "\r\n" and a lone "\r" are read as "\n". The ids live in memory (2 bytes per character
//          when the vocabulary has at most 65536 characters, else 4).
#pragma once

#include <string>
#include <vector>

#include "data/token_source.h"

namespace rwkv::data {

TokenShard open_bytes_shard(const std::string& path);

// Opens text files as one character-level stream. When vocab_dir is not empty: if vocab_dir/vocab.json
// exists it is used (so a resumed run keeps its ids) and a character missing from it is an error;
// otherwise the vocabulary is built and written there (the directory is created). Invalid UTF-8 is an
// error naming the file and the byte offset.
TokenSource open_char_text(const std::vector<std::string>& paths, const std::string& vocab_dir);

}  // namespace rwkv::data
