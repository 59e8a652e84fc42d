// Philox-4x32-10 (Salmon et al., SC 2011), the counter-based generator behind core/rng.h and the dropout
// masks: one definition, compiled for the host and (under nvcc) for CUDA kernels, so every device draws the
// same bits for the same (seed, counter).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define RWKV_HOST_DEVICE __host__ __device__
#else
#define RWKV_HOST_DEVICE
#endif

namespace rwkv {

struct PhiloxBlock {
  uint32_t lanes[4];
};

RWKV_HOST_DEVICE inline PhiloxBlock philox4x32_block(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;  // the Weyl sequence of the key
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

}  // namespace rwkv
