// Kernel lab: the loss of spec §1.7 over a block of logits [rows, V]: softmax cross-entropy (mean over rows), its
// gradient scale·(softmax − onehot(target)) with scale = 1/rows, plus L2Wrap's extra gradient
// (1e-4/rows)·logits[r, m] at each row's first maximal index m.
//   reference            double precision on the CPU
//   v1 naive             separate passes: row max (and argmax), sum of exp, per-row loss, gradient
//   v2 online softmax    one pass for (max, sum of exp, argmax) with the running-max merge, then the gradient
//   v3 fused             v2's statistics and the gradient of a row in the same block: one block of 1024 threads
//                        per multiprocessor walks the rows, so only ~132 rows (~26 MB) are in flight and the
//                        second read of a row should come from L2 (50 MB): the logits leave memory once and the
//                        gradient is written once
//   production           cuda_kernels::cross_entropy_forward + cross_entropy_backward + l2wrap_backward
// Checks: loss, logsumexp and gradient against the reference (max |diff| / max |reference| <= 1e-5) and two runs
// bit-identical. Timing against the floor (read the logits once, write the gradient once).
// Usage: lab_cross_entropy [--rows 4096] [--V N (default: both 50277 and the padded 50304)] [--repeats 20]
#include <cstring>
#include <exception>

#include "kernels/cuda/kernels.h"
#include "labs/lab.cuh"

namespace {

namespace ck = rwkv::cuda_kernels;

constexpr float kL2WrapFactor = 1e-4f;  // per row: the factor is 1e-4 / rows (spec §1.7)

struct Flags {
  int64_t rows = 4096, vocab = 0, repeats = 20;  // vocab 0: both 50277 and 50304
};

// ---- CPU reference in double.
struct Result {
  std::vector<float> logsumexp, grad;
  float loss = 0;
};

Result reference(const std::vector<float>& logits, const std::vector<int32_t>& targets, int64_t rows, int64_t vocab) {
  Result r{std::vector<float>(static_cast<size_t>(rows)), std::vector<float>(logits.size()), 0.0f};
  const double scale = 1.0 / static_cast<double>(rows), factor = static_cast<double>(kL2WrapFactor) / rows;
  double total = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* x = logits.data() + row * vocab;
    int64_t argmax = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (x[v] > x[argmax]) argmax = v;
    }
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(x[v]) - x[argmax]);
    const double lse = x[argmax] + std::log(sum);
    r.logsumexp[row] = static_cast<float>(lse);
    total += lse - x[targets[row]];
    for (int64_t v = 0; v < vocab; ++v) {
      double g = scale * (std::exp(x[v] - lse) - (v == targets[row] ? 1.0 : 0.0));
      if (v == argmax) g += factor * x[v];
      r.grad[row * vocab + v] = static_cast<float>(g);
    }
  }
  r.loss = static_cast<float>(total / static_cast<double>(rows));
  return r;
}

// ---- shared device pieces of the lab versions: one block of kThreads per row, fixed-order reductions.
constexpr int kThreads = 512;

// Reduces (value, index) pairs over the block to the larger value, the smaller index on ties. `values`,
// `indices` hold 32 entries; every thread returns the block's result.
__device__ void block_argmax(float& value, int64_t& index, float* values, int64_t* indices) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, value, offset);
    const int64_t other_index = __shfl_xor_sync(0xffffffffu, index, offset);
    if (other > value || (other == value && other_index < index)) {
      value = other;
      index = other_index;
    }
  }
  __syncthreads();  // the shared arrays may still be read by a previous call
  if (lane == 0) {
    values[warp] = value;
    indices[warp] = index;
  }
  __syncthreads();
  value = values[0];
  index = indices[0];
  for (int other = 1; other < static_cast<int>(blockDim.x >> 5); ++other) {
    if (values[other] > value || (values[other] == value && indices[other] < index)) {
      value = values[other];
      index = indices[other];
    }
  }
}

__device__ float block_sum(float value, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = 0;
  for (int other = 0; other < static_cast<int>(blockDim.x >> 5); ++other) value += shared[other];
  return value;
}

// The mean of the per-row losses, summed in double by one block in a fixed order.
__global__ void mean_kernel(const float* row_loss, int64_t rows, float* loss) {
  __shared__ double shared[32];
  double total = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) total += row_loss[i];
  for (int offset = 16; offset > 0; offset >>= 1) total += __shfl_xor_sync(0xffffffffu, total, offset);
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = total;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0;
    for (int warp = 0; warp < static_cast<int>(blockDim.x >> 5); ++warp) sum += shared[warp];
    *loss = static_cast<float>(sum / static_cast<double>(rows));
  }
}

// The gradient of one element: softmax − onehot, scaled, plus L2Wrap's term at the row's argmax.
__device__ inline float grad_element(float x, float lse, bool is_target, bool is_argmax, float scale, float factor) {
  float g = scale * (expf(x - lse) - (is_target ? 1.0f : 0.0f));
  if (is_argmax) g += factor * x;
  return g;
}

__global__ void grad_kernel(const float* logits, const int32_t* targets, const float* logsumexp,
                            const int64_t* argmax, int64_t rows, int64_t vocab, float scale, float factor,
                            float* grad) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * vocab;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / vocab, v = i % vocab;
    grad[i] = grad_element(logits[i], logsumexp[row], v == targets[row], v == argmax[row], scale, factor);
  }
}

// ---- v1 naive: one pass per quantity.
__global__ void v1_max_kernel(const float* logits, int64_t vocab, float* row_max, int64_t* argmax) {
  __shared__ float values[32];
  __shared__ int64_t indices[32];
  const float* x = logits + blockIdx.x * vocab;
  float best = -INFINITY;
  int64_t index = vocab;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    if (x[v] > best || index == vocab) {
      best = x[v];
      index = v;
    }
  }
  block_argmax(best, index, values, indices);
  if (threadIdx.x == 0) {
    row_max[blockIdx.x] = best;
    argmax[blockIdx.x] = index;
  }
}

__global__ void v1_sum_kernel(const float* logits, int64_t vocab, const float* row_max, float* logsumexp) {
  __shared__ float shared[32];
  const float* x = logits + blockIdx.x * vocab;
  const float max = row_max[blockIdx.x];
  float sum = 0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) sum += expf(x[v] - max);
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) logsumexp[blockIdx.x] = max + logf(sum);
}

__global__ void v1_loss_kernel(const float* logits, const int32_t* targets, const float* logsumexp, int64_t rows,
                               int64_t vocab, float* row_loss) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row < rows) row_loss[row] = logsumexp[row] - logits[row * vocab + targets[row]];
}

// ---- v2 online softmax: a running (max, sum of exp(x − max)) per thread, merged over the block.
struct Online {
  float max, sum;
  int64_t argmax;
};

__device__ inline void online_add(Online& o, float x, int64_t v) {
  if (x > o.max) {
    o.sum = o.sum * expf(o.max - x) + 1.0f;  // o.max = -inf: 0 * 0 + 1
    o.max = x;
    o.argmax = v;
  } else {
    o.sum += expf(x - o.max);
  }
}

// The sums do not depend on the order of the two parts; `low` keeps its argmax when the maxima are equal.
__device__ inline Online online_merge(Online low, Online high) {
  if (high.max > low.max) return {high.max, high.sum + low.sum * expf(low.max - high.max), high.argmax};
  if (high.max == -INFINITY) return low;
  return {low.max, low.sum + high.sum * expf(high.max - low.max), low.argmax};
}

// Statistics of one row (every thread gets them): thread i sees indices i, i + blockDim.x, ... in order.
__device__ Online row_statistics(const float* x, int64_t vocab, Online* shared) {
  Online o{-INFINITY, 0.0f, vocab};
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) online_add(o, x[v], v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int offset = 1; offset < 32; offset <<= 1) {  // partners differ in one bit and compute the same merge
    const Online other{__shfl_xor_sync(0xffffffffu, o.max, offset), __shfl_xor_sync(0xffffffffu, o.sum, offset),
                       __shfl_xor_sync(0xffffffffu, o.argmax, offset)};
    // Lanes interleave the indices, so on equal maxima the first maximal index is picked explicitly.
    Online merged = (lane & offset) ? online_merge(other, o) : online_merge(o, other);
    if (other.max == o.max) merged.argmax = other.argmax < o.argmax ? other.argmax : o.argmax;
    o = merged;
  }
  __syncthreads();
  if (lane == 0) shared[warp] = o;
  __syncthreads();
  o = shared[0];
  for (int other = 1; other < static_cast<int>(blockDim.x >> 5); ++other) {
    const Online next = shared[other];
    const int64_t first = next.max == o.max && next.argmax < o.argmax ? next.argmax : -1;
    o = online_merge(o, next);
    if (first >= 0) o.argmax = first;
  }
  return o;
}

__global__ void v2_statistics_kernel(const float* logits, const int32_t* targets, int64_t vocab, float* logsumexp,
                                     int64_t* argmax, float* row_loss) {
  __shared__ Online shared[32];
  const float* x = logits + blockIdx.x * vocab;
  const Online o = row_statistics(x, vocab, shared);
  if (threadIdx.x == 0) {
    const float lse = o.max + logf(o.sum);
    logsumexp[blockIdx.x] = lse;
    argmax[blockIdx.x] = o.argmax;
    row_loss[blockIdx.x] = lse - x[targets[blockIdx.x]];
  }
}

// ---- v3 fused: statistics then the gradient of the same row in the same block; blocks stride over the rows.
constexpr int kFusedThreads = 1024;

__global__ void __launch_bounds__(kFusedThreads) v3_fused_kernel(const float* logits, const int32_t* targets,
                                                                 int64_t rows, int64_t vocab, float scale,
                                                                 float factor, float* logsumexp, float* row_loss,
                                                                 float* grad) {
  __shared__ Online shared[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    const Online o = row_statistics(x, vocab, shared);
    const float lse = o.max + logf(o.sum);
    const int64_t target = targets[row];
    if (threadIdx.x == 0) {
      logsumexp[row] = lse;
      row_loss[row] = lse - x[target];
    }
    float* g = grad + row * vocab;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      g[v] = grad_element(x[v], lse, v == target, v == o.argmax, scale, factor);
    }
  }
}

// ---- the versions over one set of device buffers.
enum class Version { v1_naive, v2_online, v3_fused, production };
const char* version_name(Version version) {
  switch (version) {
    case Version::v1_naive: return "v1 naive (4 passes)";
    case Version::v2_online: return "v2 online softmax";
    case Version::v3_fused: return "v3 fused (one block per row)";
    case Version::production: return "production (fwd+bwd+l2wrap)";
  }
  return "?";
}

struct DeviceData {
  int64_t rows, vocab;
  lab::Buffer<float> logits;
  lab::Buffer<int32_t> targets;
  lab::Buffer<float> row_max, logsumexp, row_loss, loss, grad;
  lab::Buffer<int64_t> argmax;
};

unsigned multiprocessors() {
  int device = 0, count = 0;
  lab::check(cudaGetDevice(&device), "cudaGetDevice");
  lab::check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device), "SM count");
  return static_cast<unsigned>(count);
}

void run_version(Version version, DeviceData& d) {
  const auto rows = static_cast<unsigned>(d.rows);
  const float scale = 1.0f / static_cast<float>(d.rows), factor = kL2WrapFactor / static_cast<float>(d.rows);
  const unsigned grad_blocks = multiprocessors() * 8;  // 8 x 256 threads fill each multiprocessor (grid-stride)
  switch (version) {
    case Version::v1_naive:
      v1_max_kernel<<<rows, kThreads>>>(d.logits.data, d.vocab, d.row_max.data, d.argmax.data);
      v1_sum_kernel<<<rows, kThreads>>>(d.logits.data, d.vocab, d.row_max.data, d.logsumexp.data);
      v1_loss_kernel<<<(rows + 255) / 256, 256>>>(d.logits.data, d.targets.data, d.logsumexp.data, d.rows, d.vocab,
                                                  d.row_loss.data);
      mean_kernel<<<1, 1024>>>(d.row_loss.data, d.rows, d.loss.data);
      grad_kernel<<<grad_blocks, 256>>>(d.logits.data, d.targets.data, d.logsumexp.data, d.argmax.data, d.rows,
                                        d.vocab, scale, factor, d.grad.data);
      break;
    case Version::v2_online:
      v2_statistics_kernel<<<rows, kThreads>>>(d.logits.data, d.targets.data, d.vocab, d.logsumexp.data,
                                               d.argmax.data, d.row_loss.data);
      mean_kernel<<<1, 1024>>>(d.row_loss.data, d.rows, d.loss.data);
      grad_kernel<<<grad_blocks, 256>>>(d.logits.data, d.targets.data, d.logsumexp.data, d.argmax.data, d.rows,
                                        d.vocab, scale, factor, d.grad.data);
      break;
    case Version::v3_fused:
      v3_fused_kernel<<<multiprocessors(), kFusedThreads>>>(d.logits.data, d.targets.data, d.rows, d.vocab, scale,
                                                            factor, d.logsumexp.data, d.row_loss.data, d.grad.data);
      mean_kernel<<<1, 1024>>>(d.row_loss.data, d.rows, d.loss.data);
      break;
    case Version::production:
      ck::cross_entropy_forward(d.logits.data, d.targets.data, ck::IdType::i32, d.rows, d.vocab, d.logsumexp.data,
                                d.loss.data);
      ck::cross_entropy_backward(d.logits.data, d.targets.data, ck::IdType::i32, d.logsumexp.data, d.rows, d.vocab,
                                 scale, d.grad.data);
      ck::l2wrap_backward(d.logits.data, d.rows, d.vocab, factor, d.grad.data);
      break;
  }
  lab::check(cudaGetLastError(), version_name(version));
}

bool run_vocab(int64_t rows, int64_t vocab, int repeats) {
  std::printf("\nrows=%lld V=%lld: reference in double on the CPU...\n", static_cast<long long>(rows),
              static_cast<long long>(vocab));
  const size_t n = static_cast<size_t>(rows * vocab);
  // Logits of a trained model's spread; targets anywhere in the vocabulary.
  const std::vector<float> logits = lab::random_vector(n, -8.0f, 8.0f, 11 + static_cast<uint64_t>(vocab));
  std::vector<int32_t> targets(static_cast<size_t>(rows));
  std::mt19937_64 rng(12);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  const Result want = reference(logits, targets, rows, vocab);

  DeviceData d{rows,
               vocab,
               lab::Buffer<float>(logits),
               lab::Buffer<int32_t>(static_cast<size_t>(rows)),
               lab::Buffer<float>(static_cast<size_t>(rows)),
               lab::Buffer<float>(static_cast<size_t>(rows)),
               lab::Buffer<float>(static_cast<size_t>(rows)),
               lab::Buffer<float>(1),
               lab::Buffer<float>(n),
               lab::Buffer<int64_t>(static_cast<size_t>(rows))};
  lab::check(cudaMemcpy(d.targets.data, targets.data(), targets.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
             "upload targets");
  const Version versions[] = {Version::v1_naive, Version::v2_online, Version::v3_fused, Version::production};
  bool ok = true;
  for (const Version version : versions) {
    std::printf("%s:\n", version_name(version));
    run_version(version, d);
    const std::vector<float> loss = d.loss.download(), lse = d.logsumexp.download(), grad = d.grad.download();
    run_version(version, d);
    ok &= lab::close_to_scale("loss", loss, {want.loss}, 1e-5);
    ok &= lab::close_to_scale("logsumexp", lse, want.logsumexp, 1e-5);
    ok &= lab::close_to_scale("dlogits (with L2Wrap)", grad, want.grad, 1e-5);
    ok &= lab::same_bits("loss", loss, d.loss.download());
    ok &= lab::same_bits("dlogits", grad, d.grad.download());
  }
  // Floor: the logits read once, the gradient written once (the per-row values are negligible).
  const double bytes = 2.0 * static_cast<double>(n) * sizeof(float);
  std::printf("\ntiming rows=%lld V=%lld (L2 flushed, median of %d):\n", static_cast<long long>(rows),
              static_cast<long long>(vocab), repeats);
  for (const Version version : versions) {
    lab::report(version_name(version), lab::time_kernel([&] { run_version(version, d); }, repeats), bytes);
  }
  return ok;
}

bool run(const Flags& flags) {
  std::vector<int64_t> vocabularies{flags.vocab};
  if (flags.vocab == 0) vocabularies = {50277, 50304};  // the tokenizer's size and its padding to 64
  bool ok = true;
  for (const int64_t vocab : vocabularies) ok &= run_vocab(flags.rows, vocab, static_cast<int>(flags.repeats));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  lab::parse_int_flags(argc, argv, "lab_cross_entropy",
                       {{"--rows", &flags.rows}, {"--V", &flags.vocab}, {"--repeats", &flags.repeats}});
  return lab::run_lab("lab_cross_entropy", [&] { return run(flags); });
}
