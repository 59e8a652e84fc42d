#include "core/bf16.h"

namespace rwkv {

void floats_to_bf16(const float* in, BFloat16* out, int64_t count) {
#pragma omp parallel for schedule(static) if (count > (1 << 16))
  for (int64_t i = 0; i < count; ++i) out[i] = float_to_bf16(in[i]);
}

void bf16_to_floats(const BFloat16* in, float* out, int64_t count) {
#pragma omp parallel for schedule(static) if (count > (1 << 16))
  for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_float(in[i]);
}

}  // namespace rwkv
