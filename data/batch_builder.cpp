#include "data/batch_builder.h"

#include <cstring>

#include "core/error.h"

namespace rwkv::data {

BatchBuilder::BatchBuilder(const TokenSource& source, const Sampler& sampler, std::uint64_t vocab_size,
                           std::uint64_t micro_bsz, std::uint64_t rank, std::uint64_t world)
    : source_(source), sampler_(sampler), vocab_size_(vocab_size), micro_bsz_(micro_bsz), rank_(rank), world_(world) {
  RWKV_CHECK(vocab_size > 0, "batch builder: vocab_size must be positive");
  RWKV_CHECK(micro_bsz > 0, "batch builder: micro_bsz must be positive");
  RWKV_CHECK(world >= 1 && rank < world, "batch builder: rank ", rank, " is not in [0, world ", world, ")");
  RWKV_CHECK(sampler.ctx_len() + 1 <= source.size(), "batch builder: the data (", source.size(),
             " tokens) is shorter than one window of ctx_len + 1 = ", sampler.ctx_len() + 1, " tokens");
}

void BatchBuilder::fill(std::uint64_t step, std::span<std::int32_t> x, std::span<std::int32_t> y,
                        std::span<std::uint64_t> offsets) const {
  const std::uint64_t T = sampler_.ctx_len();
  RWKV_CHECK(x.size() == micro_bsz_ * T && y.size() == micro_bsz_ * T,
             "batch builder: x and y need micro_bsz * ctx_len = ", micro_bsz_ * T, " ids each, got ", x.size(), " and ",
             y.size());
  std::vector<std::uint64_t> own_offsets;
  if (offsets.empty()) {
    own_offsets.resize(micro_bsz_);
    offsets = own_offsets;
  }
  RWKV_CHECK(offsets.size() == micro_bsz_, "batch builder: offsets needs ", micro_bsz_, " entries");
  sampler_.sample_offsets(step, rank_, world_, offsets);
  for (std::uint64_t row = 0; row < micro_bsz_; ++row) {
    std::int32_t* x_row = x.data() + row * T;
    std::int32_t* y_row = y.data() + row * T;
    try {
      // The window is read once: x gets its first T tokens, y the same shifted by one plus the last.
      source_.read_checked(offsets[row], T, x_row, vocab_size_);
      std::memcpy(y_row, x_row + 1, (T - 1) * sizeof(std::int32_t));
      source_.read_checked(offsets[row] + T, 1, y_row + T - 1, vocab_size_);
    } catch (const Error& e) {
      RWKV_FAIL("batch of step ", step, " (rank ", rank_, " of ", world_, ", row ", row, ", window at offset ",
                offsets[row], "): ", e.what());
    }
  }
}

TokenBatch BatchBuilder::build(std::uint64_t step) const {
  TokenBatch batch;
  batch.micro_bsz = micro_bsz_;
  batch.ctx_len = sampler_.ctx_len();
  batch.offsets.resize(micro_bsz_);
  batch.x.resize(micro_bsz_ * batch.ctx_len);
  batch.y.resize(micro_bsz_ * batch.ctx_len);
  fill(step, batch.x, batch.y, batch.offsets);
  return batch;
}

}  // namespace rwkv::data
