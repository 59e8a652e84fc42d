#include <cstring>

#include "kernels/cpu/kernels.h"

namespace rwkv::cpu {

template <typename T>
void token_shift(const T* x, int64_t batch, int64_t time, int64_t channels, T* out) {
#pragma omp parallel for schedule(static) if (batch * time * channels > (1 << 15))
  for (int64_t b = 0; b < batch; ++b) {
    T* o = out + b * time * channels;
    std::memset(o, 0, static_cast<size_t>(channels) * sizeof(T));
    if (time > 1) {
      std::memcpy(o + channels, x + b * time * channels, static_cast<size_t>((time - 1) * channels) * sizeof(T));
    }
  }
}

template <typename T>
void token_shift_backward(const T* grad_out, int64_t batch, int64_t time, int64_t channels, T* grad_x) {
#pragma omp parallel for schedule(static) if (batch * time * channels > (1 << 15))
  for (int64_t b = 0; b < batch; ++b) {
    T* g = grad_x + b * time * channels;
    if (time > 1) {
      std::memcpy(g, grad_out + b * time * channels + channels,
                  static_cast<size_t>((time - 1) * channels) * sizeof(T));
    }
    std::memset(g + (time - 1) * channels, 0, static_cast<size_t>(channels) * sizeof(T));
  }
}

template void token_shift<float>(const float*, int64_t, int64_t, int64_t, float*);
template void token_shift<double>(const double*, int64_t, int64_t, int64_t, double*);
template void token_shift_backward<float>(const float*, int64_t, int64_t, int64_t, float*);
template void token_shift_backward<double>(const double*, int64_t, int64_t, int64_t, double*);


}  // namespace rwkv::cpu
