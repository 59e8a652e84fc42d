// ops::keyed_dropout's CUDA entry point in a build without the CUDA backend (unreachable: no CUDA tensors).
#include "core/error.h"
#include "kernels/cuda/dropout.h"

namespace rwkv::cuda_kernels {

void keyed_dropout(FloatIo, const void*, void*, int64_t, int64_t, const DropoutLaunch&) {
  RWKV_FAIL("keyed_dropout: this build has no CUDA backend (rebuild with the CUDA Toolkit installed)");
}

}  // namespace rwkv::cuda_kernels
