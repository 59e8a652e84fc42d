// Keyed dropout (RWKV-LM's nn.Dropout after the embedding and after every residual add, spec §1.9): the mask is a
// pure function of (seed, the element's global position), so it is the same on the CPU and CUDA, for any number
// of ranks (a sample's position is its global sample number, not its place on a rank), under activation
// checkpointing's recompute and after a resume. Applying the same key to the gradient is the backward.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace rwkv::ops {

struct DropoutKey {
  double probability = 0;      // of zeroing an element; kept ones are scaled by 1 / (1 − probability)
  uint64_t seed = 0;           // Philox key: the run's seed mixed with the site (dropout_site_seed)
  uint64_t first_sample = 0;   // global sample number of row 0 of the tensor
  uint64_t sample_stride = 1;  // between consecutive rows: the world size (ranks interleave samples, spec §5.3)
};

// The Philox key of one dropout site: the run's seed, the layer (−1 for the embedding) and the place in the
// block (0: after the time-mix residual, 1: after the channel-mix residual).
uint64_t dropout_site_seed(uint64_t seed, int64_t layer, int64_t place);

// x [B, ...] (f32, f64 or bf16; rows are samples) times the mask of `key`.
Tensor keyed_dropout(const Tensor& x, const DropoutKey& key);

}  // namespace rwkv::ops
