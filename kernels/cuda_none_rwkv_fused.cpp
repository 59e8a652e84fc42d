// The fused RWKV CUDA entry points in a build without the CUDA backend (unreachable in practice: no CUDA tensor
// exists there), so that ops_rwkv_fused.cpp is the same in both builds.
#include "core/error.h"
#include "kernels/cuda/rwkv_fused.h"

namespace rwkv::cuda_kernels {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  RWKV_FAIL(op, ": this build has no CUDA backend (rebuild with the CUDA Toolkit installed)");
}
}  // namespace

void time_mix_forward(const TimeMixForwardArgs&) { no_cuda("time_mix"); }
void time_mix_backward(const TimeMixBackwardArgs&) { no_cuda("time_mix_backward"); }
void add_layernorm_forward(FloatIo, const void*, const void*, const float*, const float*, int64_t, int64_t, float,
                           void*, void*, float*, float*) {
  no_cuda("add_layernorm");
}
void add_layernorm_backward(FloatIo, const void*, const void*, const void*, const float*, const float*, const float*,
                            int64_t, int64_t, void*, float*, float*) {
  no_cuda("add_layernorm_backward");
}
void sigmoid_mul_forward(FloatIo, const void*, const void*, int64_t, void*) { no_cuda("sigmoid_mul"); }
void sigmoid_mul_backward(FloatIo, const void*, const void*, const void*, int64_t, void*, void*) {
  no_cuda("sigmoid_mul_backward");
}
void relu_square_forward(FloatIo, const void*, int64_t, void*) { no_cuda("relu_square"); }
void relu_square_backward(FloatIo, const void*, const void*, int64_t, void*) { no_cuda("relu_square_backward"); }

}  // namespace rwkv::cuda_kernels
