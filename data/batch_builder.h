// Batch assembly: the micro_bsz windows a sampler picks for (step, rank) become x and y (spec §5.2):
// for the window of ctx_len + 1 tokens at offset i, x row = tokens[i, i + T), y row = tokens[i + 1, i + T + 1).
// x and y are int32, row-major [micro_bsz, ctx_len]. Every copied id is checked against vocab_size.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/sampler.h"
#include "data/token_source.h"

namespace rwkv::data {

struct TokenBatch {
  std::uint64_t micro_bsz = 0;
  std::uint64_t ctx_len = 0;
  std::vector<std::uint64_t> offsets;  // window starts, one per row
  std::vector<std::int32_t> x;         // [micro_bsz, ctx_len]
  std::vector<std::int32_t> y;         // [micro_bsz, ctx_len]
};

class BatchBuilder {
public:
  // source and sampler must outlive the builder.
  BatchBuilder(const TokenSource& source, const Sampler& sampler, std::uint64_t vocab_size, std::uint64_t micro_bsz,
               std::uint64_t rank = 0, std::uint64_t world = 1);

  // Fills x and y (each micro_bsz·ctx_len ids) for `step`; offsets (if not empty) gets the window starts.
  // Throws naming step, rank, row and, for a bad token, the file and its token offset.
  void fill(std::uint64_t step, std::span<std::int32_t> x, std::span<std::int32_t> y,
            std::span<std::uint64_t> offsets = {}) const;
  TokenBatch build(std::uint64_t step) const;

  std::uint64_t micro_bsz() const { return micro_bsz_; }
  std::uint64_t ctx_len() const { return sampler_.ctx_len(); }

private:
  const TokenSource& source_;
  const Sampler& sampler_;
  std::uint64_t vocab_size_;
  std::uint64_t micro_bsz_;
  std::uint64_t rank_;
  std::uint64_t world_;
};

}  // namespace rwkv::data
