// The GPT-2 / ByteLevel pre-tokenizer split, written out by hand instead of running the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with the same leftmost-first alternation and greedy/backtracking behaviour as Oniguruma. The pieces
// are contiguous (every character starts some alternative), so a split is a sequence of end offsets.
#pragma once

#include <cstddef>
#include <string_view>

namespace rwkv::data {

// End offset of the pre-token that starts at text[pos] (pos < text.size(); text is valid UTF-8).
std::size_t gpt2_pretoken_end(std::string_view text, std::size_t pos);

}  // namespace rwkv::data
