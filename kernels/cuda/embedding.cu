// Embedding lookup and its deterministic backward, plus the device-side id range check.
// Backward without float atomics: a stable radix sort of (id, position) pairs groups each id's positions in
// increasing order; one block per vocabulary row then sums its positions' gradient rows in that order, exactly
// as the CPU does (so the two agree bit for bit).
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda_runtime.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

template <typename Fn>
void dispatch_ids(IdType id_type, Fn&& fn) {
  if (id_type == IdType::i32) return fn(int32_t{});
  return fn(int64_t{});
}

template <typename Id>
__global__ void embedding_forward_kernel(const float* table, int64_t dim, const Id* ids, int64_t count, float* out) {
  RWKV_GRID_STRIDE(i, count * dim) {
    const int64_t position = i / dim, column = i % dim;
    out[i] = table[static_cast<int64_t>(ids[position]) * dim + column];
  }
}

template <typename Id>
__global__ void make_sort_pairs_kernel(const Id* ids, int64_t count, uint32_t* keys, int32_t* positions) {
  RWKV_GRID_STRIDE(i, count) {
    keys[i] = static_cast<uint32_t>(ids[i]);
    positions[i] = static_cast<int32_t>(i);
  }
}

// First index in sorted[0, count) whose key is >= value.
__device__ int64_t lower_bound(const uint32_t* sorted, int64_t count, uint64_t value) {
  int64_t low = 0, high = count;
  while (low < high) {
    const int64_t mid = (low + high) / 2;
    if (sorted[mid] < value) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  return low;
}

__global__ void embedding_backward_rows_kernel(const float* grad_out, const uint32_t* sorted_ids,
                                               const int32_t* sorted_positions, int64_t count, int64_t vocab,
                                               int64_t dim, float* grad_table) {
  __shared__ int64_t range[2];
  for (int64_t row = blockIdx.x; row < vocab; row += gridDim.x) {
    if (threadIdx.x == 0) {
      range[0] = lower_bound(sorted_ids, count, static_cast<uint64_t>(row));
      range[1] = lower_bound(sorted_ids, count, static_cast<uint64_t>(row) + 1);
    }
    __syncthreads();
    const int64_t begin = range[0], end = range[1];
    for (int64_t column = threadIdx.x; column < dim; column += blockDim.x) {
      float total = 0.0f;
      for (int64_t p = begin; p < end; ++p) total += grad_out[static_cast<int64_t>(sorted_positions[p]) * dim + column];
      grad_table[row * dim + column] = total;
    }
    __syncthreads();  // `range` is rewritten for the next row
  }
}

template <typename Id>
__global__ void first_out_of_range_kernel(const Id* ids, int64_t count, int64_t limit,
                                          unsigned long long* first_bad) {
  RWKV_GRID_STRIDE(i, count) {
    const int64_t id = static_cast<int64_t>(ids[i]);
    if (id < 0 || id >= limit) {
      atomicMin(first_bad, static_cast<unsigned long long>(i));  // integer min: order-independent
      return;  // later positions of this thread are larger
    }
  }
}

int key_bits(int64_t vocab) {
  int bits = 1;
  while (bits < 32 && (int64_t{1} << bits) < vocab) ++bits;
  return bits;
}

}  // namespace

void embedding_forward(const float* table, int64_t dim, const void* ids, IdType id_type, int64_t count, float* out) {
  if (count == 0 || dim == 0) return;
  dispatch_ids(id_type, [&](auto zero) {
    using Id = decltype(zero);
    embedding_forward_kernel<<<blocks_for(count * dim, 256), 256, 0, stream()>>>(table, dim, static_cast<const Id*>(ids),
                                                                                count, out);
  });
  check_launch("cuda embedding");
}

void embedding_backward(const float* grad_out, const void* ids, IdType id_type, int64_t count, int64_t vocab,
                        int64_t dim, float* grad_table) {
  if (vocab == 0 || dim == 0) return;
  RWKV_CHECK(count < (int64_t{1} << 31) && vocab <= (int64_t{1} << 32), "cuda embedding_backward: ", count,
             " positions or a vocabulary of ", vocab, " is beyond the 32-bit sort keys");
  const cudaStream_t s = stream();
  Scratch pairs(static_cast<size_t>(count) * 4 * sizeof(uint32_t));
  uint32_t* keys_in = pairs.as<uint32_t>();
  uint32_t* keys_out = keys_in + count;
  auto* positions_in = reinterpret_cast<int32_t*>(keys_out + count);
  int32_t* positions_out = positions_in + count;
  if (count > 0) {
    dispatch_ids(id_type, [&](auto zero) {
      using Id = decltype(zero);
      make_sort_pairs_kernel<<<blocks_for(count, 256), 256, 0, s>>>(static_cast<const Id*>(ids), count, keys_in,
                                                                    positions_in);
    });
    check_launch("cuda embedding_backward (pairs)");
    size_t temp_bytes = 0;
    const int bits = key_bits(vocab);
    check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, positions_in, positions_out,
                                               count, 0, bits, s),
               "cuda embedding_backward (sort size)");
    Scratch temp(temp_bytes);
    check_cuda(cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, keys_in, keys_out, positions_in,
                                               positions_out, count, 0, bits, s),
               "cuda embedding_backward (sort)");
  }
  const int threads = dim < 256 ? static_cast<int>(ceil_div(dim, 32) * 32) : 256;
  embedding_backward_rows_kernel<<<blocks_for(vocab, 1, kMaxGridX), threads, 0, s>>>(
      grad_out, keys_out, positions_out, count, vocab, dim, grad_table);
  check_launch("cuda embedding_backward (rows)");
}

int64_t first_id_out_of_range(const void* ids, IdType id_type, int64_t count, int64_t limit) {
  if (count == 0) return -1;
  const cudaStream_t s = stream();
  Scratch result(sizeof(unsigned long long));
  auto* first_bad = result.as<unsigned long long>();
  check_cuda(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), s), "id range check");
  dispatch_ids(id_type, [&](auto zero) {
    using Id = decltype(zero);
    first_out_of_range_kernel<<<blocks_for(count, 256), 256, 0, s>>>(static_cast<const Id*>(ids), count, limit,
                                                                      first_bad);
  });
  check_launch("cuda id range check");
  unsigned long long host = 0;
  check_cuda(cudaMemcpyAsync(&host, first_bad, sizeof(host), cudaMemcpyDeviceToHost, s), "id range check (copy)");
  rwkv::cuda::count_host_wait();
  check_cuda(cudaStreamSynchronize(s), "id range check (synchronize)");
  return host == ~0ull ? -1 : static_cast<int64_t>(host);
}

}  // namespace rwkv::cuda_kernels
