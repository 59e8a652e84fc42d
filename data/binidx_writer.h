// Writing binidx token data (spec §5.1), e.g. from `rwkv tokenize` and the tests.
//
// Crash safety: tokens go to <prefix>.bin.partial and the index to <prefix>.idx.partial. finish()
// fsyncs both, removes any old <prefix>.idx, renames the .bin into place, then the .idx, fsyncing the
// directory between steps. So a <prefix>.idx only ever exists next to the complete .bin it describes:
// an interrupted write leaves at most *.partial files and a .bin without an .idx, which open rejects.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "data/token_dtype.h"

namespace rwkv::data {

struct BinidxSummary {
  std::string prefix;
  TokenDtype dtype = TokenDtype::uint16;
  std::uint64_t documents = 0;
  std::uint64_t tokens = 0;
  std::uint64_t bin_bytes = 0;
  std::uint64_t idx_bytes = 0;
};

class BinidxWriter {
public:
  // Starts writing <prefix>.bin/.idx with the given token dtype (see token_dtype_for_vocab).
  static BinidxWriter open(const std::string& prefix, TokenDtype dtype);

  BinidxWriter(BinidxWriter&&) noexcept;
  BinidxWriter& operator=(BinidxWriter&&) = delete;
  // Without finish(), deletes the .partial files: nothing is published.
  ~BinidxWriter();

  // Appends one document (one binidx sequence). Every id must be in [0, max_token_id(dtype)]; otherwise
  // throws naming the id, the document and the dtype, and nothing of this document is written.
  void add_document(std::span<const std::int32_t> ids);
  void add_document(std::span<const std::uint32_t> ids);
  void add_document(std::span<const std::int64_t> ids);

  // Writes the index, makes both files durable and publishes them (see the top of this file).
  BinidxSummary finish();

  std::uint64_t documents() const;
  std::uint64_t tokens() const;

private:
  struct State;
  explicit BinidxWriter(std::unique_ptr<State> state);
  template <typename Id>
  void add(std::span<const Id> ids);

  std::unique_ptr<State> state_;
};

}  // namespace rwkv::data
