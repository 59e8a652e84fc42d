// Differentiable ops on Variables. Each forward runs through kernels/ops.h and, when recording, attaches a
// backward that keeps only what its gradient formula needs.
#pragma once

#include "autograd/variable.h"

namespace rwkv::ag {

// ---- dtype conversion: x.to(dtype) (f32 -> bf16 rounds to nearest even); the gradient converts back to x's dtype
// (so a bf16 gradient reaches an fp32 master weight as fp32).
Variable cast(const Variable& x, DType dtype);

// ---- linear algebra (shapes and dtypes as ops::matmul; the gradients have the operands' dtype)
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
// With the result in out_dtype (f32 for bf16 operands: fp32 logits from bf16 activations).
Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b, DType out_dtype);

// ---- elementwise, with NumPy broadcasting; the gradient of a broadcast operand is summed back to its shape
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable add_scalar(const Variable& x, double value);   // x + value
Variable mul_scalar(const Variable& x, double value);   // x * value
Variable rsub_scalar(double value, const Variable& x);  // value - x (e.g. 1 - time_mix)
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable sigmoid(const Variable& x);
Variable relu(const Variable& x);
Variable square(const Variable& x);

inline Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
inline Variable operator-(const Variable& x) { return neg(x); }
inline Variable operator+(const Variable& x, double v) { return add_scalar(x, v); }
inline Variable operator*(const Variable& x, double v) { return mul_scalar(x, v); }
inline Variable operator*(double v, const Variable& x) { return mul_scalar(x, v); }
inline Variable operator-(double v, const Variable& x) { return rsub_scalar(v, x); }

// ---- reductions
Variable sum(const Variable& x, int64_t dim, bool keepdim = false);
Variable sum_all(const Variable& x);
Variable mean(const Variable& x, int64_t dim, bool keepdim = false);
Variable mean_all(const Variable& x);

// ---- views (the result shares storage with the input; gradients flow back through the view)
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int64_t dim0, int64_t dim1);
Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end);

// ---- RWKV building blocks
Variable layernorm(const Variable& x, const Variable& weight, const Variable& bias, double eps = 1e-5);
Variable embedding(const Variable& table, const Tensor& ids);  // ids: i32/i64, any shape
// [B, T, C] shifted one step along time; t = 0 gets zeros, or `previous` [B, C] when given (chunked/RNN mode).
Variable token_shift(const Variable& x, const Variable& previous = Variable());
// Mean cross-entropy of logits [..., V] against integer targets [...], in fp32 or better.
Variable cross_entropy(const Variable& logits, const Tensor& targets);
// L2Wrap (spec §1.7): returns `loss` unchanged; in backward the loss gradient passes through and `logits` gets
// the extra 1e-4 / (positions) * max-logit at each position's argmax, not scaled by the incoming gradient.
Variable l2wrap(const Variable& loss, const Variable& logits);
// The language-model head and its loss fused: l2wrap(cross_entropy(x · weightᵀ, targets), x · weightᵀ) for
// x [..., C], weight [V, C], targets [...], without keeping the logits. Forward computes them `chunk_rows`
// positions at a time (0: about 2^25 logits per chunk) and keeps only x and one logsumexp per position;
// backward recomputes each chunk's logits and turns them straight into the chunk's share of dx and dweight.
// No [positions, V] tensor outlives a chunk, at the price of the head's forward GEMM once more.
Variable linear_cross_entropy(const Variable& x, const Variable& weight, const Tensor& targets,
                              int64_t chunk_rows = 0);

// WKV (spec §1.5) over k, v [B, T, C] with time_decay, time_first [C] (w = -exp(time_decay) inside, fp32).
// state_in [B, 3, C] = (aa, bb, pp) continues a sequence (undefined = the zero state); the final state is
// always returned, and gradients flow through both states, so a long sequence can be trained in chunks.
// The final state's gradient is taken through a = aa·e^pp and b = bb·e^pp (see kernels/cpu/kernels.h).
struct WkvResult {
  Variable y, state;
};
WkvResult wkv(const Variable& time_decay, const Variable& time_first, const Variable& k, const Variable& v,
              const Variable& state_in = Variable());

}  // namespace rwkv::ag
