// Counter-based random numbers (Philox-4x32-10): draw element i of a fill at counter (offset + i/4, lane i%4),
// so the same (seed, offset) gives the same numbers on any device and in any thread order. A Generator only
// holds (seed, offset); saving those two integers saves the RNG state exactly.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace rwkv {

// One Philox-4x32-10 block: four 32-bit words for (seed, counter).
std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter);

// Maps 32 random bits to a float in [0, 1) with 24 bits of precision (exactly representable values).
inline float uniform_from_bits(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

class Generator {
public:
  explicit Generator(uint64_t seed, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }  // in Philox blocks consumed so far
  void set_offset(uint64_t offset) { offset_ = offset; }

  // Fill a contiguous f32 CPU tensor; each advances the offset by ceil(numel / 4) blocks.
  void uniform_(Tensor& tensor, float low, float high);
  void normal_(Tensor& tensor, float mean, float stddev);
  uint64_t next_u64();  // one block's first two words; advances the offset by one

private:
  uint64_t take_blocks(int64_t numel);
  uint64_t seed_;
  uint64_t offset_;
};

// An orthogonal [rows, cols] f32 matrix times `gain`, with PyTorch's orthogonal_ semantics: a Gaussian matrix,
// transposed when rows < cols, QR-factorised (LAPACK dgeqrf/dorgqr, in double), columns of Q multiplied by the
// sign of R's diagonal, transposed back. Rows (or columns, whichever are fewer) are orthonormal before the gain.
Tensor orthogonal(int64_t rows, int64_t cols, double gain, Generator& generator);

}  // namespace rwkv
