// CUDA kernels: the same contracts as kernels/cpu/kernels.h, over device pointers, on the current stream of the
// current device (see core/cuda_runtime.h). fp32 unless stated; elementwise ops, sums, WKV and GEMM also take
// bf16 I/O. Every result is deterministic: reductions combine in a fixed order and no float atomics are used.
#pragma once

#include <cstdint>

#include "kernels/op_kinds.h"

namespace rwkv::cuda_kernels {

enum class IdType { i32, i64 };       // integer ids and targets
enum class FloatIo { f32, bf16 };     // element type of tensors that may be bf16

// ---- elementwise (grid-stride loops): every pointer holds `io` elements (f32 or bf16); the math is fp32 and a
// bf16 result is rounded to nearest even.
void unary(FloatIo io, Unary op, const void* x, void* y, int64_t n);
void unary_backward(FloatIo io, Unary op, const void* grad_out, const void* x, const void* y, void* grad_in,
                    int64_t n);
void binary(FloatIo io, Binary op, const void* a, const void* b, int64_t b_period, void* out, int64_t n);
void binary_left_broadcast(FloatIo io, Binary op, const void* a, int64_t a_period, const void* b, void* out,
                           int64_t n);
void affine(FloatIo io, const void* x, float scale, float shift, void* y, int64_t n);
// y += x, with x of x_io and y of y_io: equal types, or bf16 into f32 (a bf16 gradient into an fp32 one).
void accumulate(FloatIo x_io, FloatIo y_io, const void* x, void* y, int64_t n);

// ---- reductions over the middle axis of [outer, n, inner] -> [outer, inner], accumulated in double; x and y
// hold `io` elements (a bf16 result is the double sum rounded to fp32, then to bf16, as on the CPU).
void sum_middle(FloatIo io, const void* x, int64_t outer, int64_t n, int64_t inner, void* y);

// ---- layernorm over the last axis of [rows, cols] (fp32 statistics); backward overwrites grad_weight/bias.
void layernorm_forward(const float* x, const float* weight, const float* bias, int64_t rows, int64_t cols, float eps,
                       float* y, float* mean, float* rstd);
void layernorm_backward(const float* grad_y, const float* x, const float* weight, const float* mean,
                        const float* rstd, int64_t rows, int64_t cols, float* grad_x, float* grad_weight,
                        float* grad_bias);

// ---- embedding (ids validated by the caller); the backward sums each id's rows in position order.
void embedding_forward(const float* table, int64_t dim, const void* ids, IdType id_type, int64_t count, float* out);
void embedding_backward(const float* grad_out, const void* ids, IdType id_type, int64_t count, int64_t vocab,
                        int64_t dim, float* grad_table);
// The first flat position whose id is outside [0, limit), or -1 (one scalar comes back to the host).
int64_t first_id_out_of_range(const void* ids, IdType id_type, int64_t count, int64_t limit);

// ---- token shift over [batch, time, channels]; `previous` [batch, channels] (nullable) fills t = 0.
void token_shift(const float* x, const float* previous, int64_t batch, int64_t time, int64_t channels, float* out);
void token_shift_backward(const float* grad_out, int64_t batch, int64_t time, int64_t channels, float* grad_x);

// ---- cross-entropy over logits [rows, vocab]: logsumexp per row (fp32), and the mean loss written to the
// device scalar `loss` (per-row losses summed in double in row order).
void cross_entropy_forward(const float* logits, const void* targets, IdType id_type, int64_t rows, int64_t vocab,
                           float* logsumexp, float* loss);
// grad_logits = scale * (softmax(row) - onehot(target)).
void cross_entropy_backward(const float* logits, const void* targets, IdType id_type, const float* logsumexp,
                            int64_t rows, int64_t vocab, float scale, float* grad_logits);
// grad_logits[r, argmax_r] += factor * logits[r, argmax_r] (first maximal index on ties).
void l2wrap_backward(const float* logits, int64_t rows, int64_t vocab, float factor, float* grad_logits);

// ---- optimizer support (contracts: cpu::adam_step, cpu::sum_of_squares; the sum comes back to the host)
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2);
double sum_of_squares(const float* x, int64_t n);
// Multi-tensor forms: one launch over every tensor (the optimizer's step) instead of one per parameter.
struct AdamTensorArgs {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;
  float lr, weight_decay;
};
void multi_tensor_adam_step(const AdamTensorArgs* tensors, int64_t count, float beta1, float beta2, float eps,
                            float bias_correction1, float bias_correction2, bool scale_grad, float grad_scale);
// Σ over the tensors, in order, of each one's sum_of_squares (bit-identical to calling it per tensor), with one
// copy back to the host.
double multi_tensor_sum_of_squares(const float* const* tensors, const int64_t* sizes, int64_t count);

// ---- GEMM through cuBLAS, row-major: C_g = alpha * op(A_g) op(B_g) + beta * C_g for g < batch, with
// X_g = X + g * stride_x (stride_b = 0 shares B). A and B hold ab_io elements, C holds c_io elements (f32 A/B
// with f32 C; bf16 A/B with bf16 or f32 C). Accumulates in fp32; tf32 (f32 operands only) when allow_tf32.
void gemm(FloatIo ab_io, FloatIo c_io, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, float beta,
          void* c, int64_t ldc, int64_t stride_c, int64_t batch, bool allow_tf32);
// ---- WKV (contract: cpu::wkv_forward / cpu::wkv_backward). u, k, v, y, grad_y, gk, gv have the I/O type; w,
// the states and their gradients, and the per-batch gw, gu are fp32; all state math is fp32.
enum class WkvVersion {
  automatic,   // RWKV_WKV_KERNEL=v1|v2 in the environment, else v1
  v1_serial,   // one thread per (b, c), serial over time (the reference kernel)
  v2_chunked,  // parallel over time: chunked scan with the running-max trick
};
WkvVersion resolve_wkv_version(WkvVersion requested);
const char* wkv_version_name(WkvVersion version);

struct WkvForwardArgs {
  int64_t batch, time, channels;
  FloatIo io;
  const float* w;  // -exp(time_decay), [C]
  const void *u, *k, *v;
  const float* state_in;  // [B, 3, C] or null (zero state)
  void* y;
  float* state_out;  // [B, 3, C] or null
};
void wkv_forward(const WkvForwardArgs& args, WkvVersion version = WkvVersion::automatic);

struct WkvBackwardArgs {
  int64_t batch, time, channels;
  FloatIo io;
  const float* w;
  const void *u, *k, *v, *y, *grad_y;
  const float* state_in;        // or null
  const float* grad_state_out;  // or null
  float *gw, *gu;               // [B, C]; gw already multiplied by w
  void *gk, *gv;
  float* grad_state_in;  // written when state_in is given
};
void wkv_backward(const WkvBackwardArgs& args, WkvVersion version = WkvVersion::automatic);

}  // namespace rwkv::cuda_kernels
