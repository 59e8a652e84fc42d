// CPU kernels: plain functions over contiguous row-major buffers and sizes. No Tensor and no autograd here,
// so each can be tested and benchmarked alone. Floating-point kernels are templates over float (training)
// and double (gradient checks); integer ids are int32_t or int64_t.
#pragma once

#include <cstdint>

#include "kernels/op_kinds.h"

namespace rwkv::cpu {

// ---- GEMM (OpenBLAS): C = alpha * op(A) * op(B) + beta * C, row-major, op = transpose when flagged.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// ---- elementwise
template <typename T>
void unary(Unary op, const T* x, T* y, int64_t n);
// grad_in = grad_out * d op(x)/dx, written with whichever of x (input) or y (output) the derivative uses:
// neg: -, exp: y, sigmoid: y, relu: x, square: x.
template <typename T>
void unary_backward(Unary op, const T* grad_out, const T* x, const T* y, T* grad_in, int64_t n);

// out[i] = a[i] op b[i % b_period] (b_period divides n): equal shapes (b_period = n) and a trailing-dims
// broadcast such as x[B,T,C] * m[C] in one kernel.
template <typename T>
void binary(Binary op, const T* a, const T* b, int64_t b_period, T* out, int64_t n);
// The mirrored case: out[i] = a[i % a_period] op b[i].
template <typename T>
void binary_left_broadcast(Binary op, const T* a, int64_t a_period, const T* b, T* out, int64_t n);
// y = x * scale + shift
template <typename T>
void affine(const T* x, T scale, T shift, T* y, int64_t n);
// y += x
template <typename T>
void accumulate(const T* x, T* y, int64_t n);

// ---- reductions over the middle axis of [outer, n, inner] -> [outer, inner], accumulated in double.
template <typename T>
void sum_middle(const T* x, int64_t outer, int64_t n, int64_t inner, T* y);

// ---- layernorm over the last axis of [rows, cols]; biased variance; saves mean and 1/std per row.
template <typename T>
void layernorm_forward(const T* x, const T* weight, const T* bias, int64_t rows, int64_t cols, double eps, T* y,
                       T* mean, T* rstd);
// grad_weight and grad_bias are overwritten (summed over rows deterministically).
template <typename T>
void layernorm_backward(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd, int64_t rows,
                        int64_t cols, T* grad_x, T* grad_weight, T* grad_bias);

// ---- embedding: out[i, :] = table[ids[i], :]; ids are validated by the caller.
template <typename T, typename Id>
void embedding_forward(const T* table, int64_t dim, const Id* ids, int64_t count, T* out);
// grad_table (overwritten, [vocab, dim]) = scatter-add of grad_out rows; deterministic (ordered per row).
template <typename T, typename Id>
void embedding_backward(const T* grad_out, const Id* ids, int64_t count, int64_t vocab, int64_t dim, T* grad_table);

// ---- token shift over [batch, time, channels]: out[b, t] = x[b, t-1], out[b, 0] = 0.
template <typename T>
void token_shift(const T* x, int64_t batch, int64_t time, int64_t channels, T* out);
// grad_x[b, t] = grad_out[b, t+1], grad_x[b, T-1] = 0.
template <typename T>
void token_shift_backward(const T* grad_out, int64_t batch, int64_t time, int64_t channels, T* grad_x);

// ---- cross-entropy over logits [rows, vocab] with integer targets: returns the mean of
// logsumexp(row) - row[target]; saves logsumexp per row. Accumulates in double.
template <typename T, typename Id>
double cross_entropy_forward(const T* logits, const Id* targets, int64_t rows, int64_t vocab, T* logsumexp);
// grad_logits = scale * (softmax(row) - onehot(target)), scale = grad_loss / rows.
template <typename T, typename Id>
void cross_entropy_backward(const T* logits, const Id* targets, const T* logsumexp, int64_t rows, int64_t vocab,
                            T scale, T* grad_logits);
// L2Wrap (spec §1.7): grad_logits[r, argmax_r] += factor * logits[r, argmax_r] (first maximal index on ties).
template <typename T>
void l2wrap_backward(const T* logits, int64_t rows, int64_t vocab, T factor, T* grad_logits);

// ---- Adam / AdamW step on fp32 master weights (spec §4.1, DeepSpeed FusedAdam semantics):
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr (m/bc1 / (sqrt(v/bc2) + eps) + wd p), bc = 1 - b^step.
// With scale_grad, g = grad · grad_scale + 0 (the clipping factor, the same arithmetic as affine()).
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n, float lr, float beta1,
               float beta2, float eps, float weight_decay, float bias_correction1, float bias_correction2,
               bool scale_grad = false, float grad_scale = 1.0f);
// Sum of squares in double (for the global gradient norm).
double sum_of_squares(const float* x, int64_t n);

// ---- WKV (spec §1.5, §2.3-2.4) over [batch, time, channels] (channels = dim_att), per (b, c) independently.
// w = -exp(time_decay) (computed by the caller in fp32) and u = time_first, one per channel. The recurrent state
// is [batch, 3, channels] = (aa, bb, pp) with a = aa·e^pp, b = bb·e^pp; state_in null means the zero state
// (aa = bb = 0, pp = -1e38); state_out may be null. All state math is in the stable running-max form.
template <typename T>
void wkv_forward(int64_t batch, int64_t time, int64_t channels, const T* w, const T* u, const T* k, const T* v,
                 const T* state_in, T* y, T* state_out);
// Exact gradients (no truncated history). gw and gu are per batch element [batch, channels]; gw is already
// multiplied by w, i.e. it is the gradient w.r.t. time_decay. grad_state_out (nullable) is the gradient that
// arrives at state_out; it is taken through a = aa·e^pp and b = bb·e^pp (its pp component is not used: every
// consumer of a WKV state depends on the state only through a and b). grad_state_in (written when state_in is
// given) is the gradient w.r.t. state_in's (aa, bb, pp).
template <typename T>
void wkv_backward(int64_t batch, int64_t time, int64_t channels, const T* w, const T* u, const T* k, const T* v,
                  const T* y, const T* grad_y, const T* state_in, const T* grad_state_out, T* gw, T* gu, T* gk,
                  T* gv, T* grad_state_in);

}  // namespace rwkv::cpu
