// Tests only: a replacement for the CUDA devices' allocators.
#pragma once

#include "core/allocator.h"

namespace rwkv {

// While set, every CUDA device's new storage comes from `allocator` (nullptr restores the real ones). The op
// device-check tests give it memory the host cannot read, so that on a machine without a GPU an op that reads a
// device operand on the host crashes instead of passing by luck. Storage keeps the allocator it came from, so
// tensors made while it is set are freed by it afterwards.
void set_cuda_allocator_for_testing(Allocator* allocator);

}  // namespace rwkv
