// Tensor-level ops: each checks shapes, dtypes and devices (errors name the op and the tensors) and routes to
// the CPU or CUDA kernel. Inputs may be non-contiguous (they are packed first); outputs are contiguous.
// Floating-point ops take f32 (and f64 on the CPU, for gradient checks); ids and targets take i32 or i64.
// Mixed precision: matmul, the elementwise ops, the sums, broadcast_to and WKV's k, v also take bf16 tensors
// (computed in fp32, results rounded to bf16 to nearest even, on the CPU and on CUDA); operands of one op share
// one dtype except where stated. An op without bf16 support refuses it with a clear error.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/op_kinds.h"

namespace rwkv::ops {

// ---- matrix products. 2-D: [M,K] x [K,N]; 3-D batched: [G,M,K] x [G,K,N], or [G,M,K] x [K,N] (shared B).
// trans_a / trans_b transpose the last two dims of the operand before the product.
// Operands both f32, both bf16, or both f64 (CPU); the result has the operands' dtype.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// The same with the result in out_dtype: the operands' dtype, or f32 for bf16 operands (fp32 accumulation
// either way; a bf16 result is the fp32 one rounded once).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, DType out_dtype);
// out = op(a) op(b) + beta * out in fp32 (then rounded when out is bf16); out must already have the result's
// shape, be contiguous, and have the operands' dtype or f32 for bf16 operands (weight gradients into fp32).
void matmul_into(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Tensor& out, double beta);
// fp32 matmuls on CUDA may round their inputs to tf32 on the tensor cores (about 8x faster, ~1e-3 relative
// error) only when allowed; off by default, process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();

// ---- elementwise
Tensor unary(Unary op, const Tensor& x);
// Gradient of a unary op; pass the op's input and/or output (whichever the derivative needs, see cpu/kernels.h).
Tensor unary_backward(Unary op, const Tensor& grad_out, const Tensor& input, const Tensor& output);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);  // NumPy broadcasting
Tensor affine(const Tensor& x, double scale, double shift);  // x * scale + shift
void accumulate_(Tensor& into, const Tensor& value);         // into += value, same shape; bf16 value into f32 ok

// ---- reductions (accumulated in double; the result has the input's dtype)
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor sum_all(const Tensor& x);                           // rank-0 result
Tensor sum_to_shape(const Tensor& x, const Shape& shape);  // undoes broadcasting (gradient of an expand)
Tensor broadcast_to(const Tensor& x, const Shape& shape);  // contiguous copy of x.expand(shape)

// ---- layernorm over the last dim
struct LayerNormOutput {
  Tensor y, mean, rstd;  // mean and rstd have the leading shape of x
};
LayerNormOutput layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
struct LayerNormGrads {
  Tensor x, weight, bias;
};
LayerNormGrads layernorm_backward(const Tensor& grad_y, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                  const Tensor& rstd);

// Every id in [0, limit), else an error naming `op`, `what` ("target"), the id and its flat position.
void check_ids_below(const char* op, const Tensor& ids, int64_t limit, const char* what);

// ---- embedding lookup: ids of any shape S -> S + [dim]; every id must be in [0, vocab).
Tensor embedding(const Tensor& table, const Tensor& ids);
Tensor embedding_backward(const Tensor& grad_out, const Tensor& ids, int64_t vocab);

// ---- token shift along time of [B, T, C]: out[:, t] = x[:, t-1]; at t = 0 zeros, or `previous` [B, C] (the
// last token of the previous chunk) when given.
Tensor token_shift(const Tensor& x, const Tensor& previous = Tensor());
Tensor token_shift_backward(const Tensor& grad_out);
Tensor token_shift_previous_backward(const Tensor& grad_out);  // the gradient of `previous`: grad_out[:, 0]

// ---- cross-entropy of logits [..., V] against integer targets [...] (mean over positions, in fp32 or better).
struct CrossEntropyOutput {
  Tensor loss;       // rank-0
  Tensor logsumexp;  // one per position
};
// Every target is checked to be in [0, V), which on a GPU is a device pass and a host read. A caller that splits
// one batch into many calls (the chunked head + loss) checks the whole batch once with check_ids_below and passes
// IdCheck::done.
enum class IdCheck { run, done };
CrossEntropyOutput cross_entropy(const Tensor& logits, const Tensor& targets, IdCheck check = IdCheck::run);
Tensor cross_entropy_backward(double grad_loss, const Tensor& logits, const Tensor& targets,
                              const Tensor& logsumexp);
// L2Wrap's extra gradient (spec §1.7): grad_logits[pos, argmax] += factor * logits[pos, argmax].
void l2wrap_backward_(Tensor& grad_logits, const Tensor& logits, double factor);

// ---- optimizer support (fp32 master weights)
struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based count of updates including this one (bias correction)
};
void adam_step_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamHyper& hyper);
double sum_of_squares(const Tensor& x);  // in double, deterministic

// The optimizer's multi-tensor forms: one pass over every parameter (one launch on the GPU, not one per tensor,
// and no scaled copy of the gradients). Each tensor gets exactly the arithmetic of adam_step_ with its own lr
// and weight decay (the parameter groups); with grad_scale < 1 (global-norm clipping) its gradient is first
// scaled as ops::affine(grad, grad_scale, 0) would. All tensors contiguous f32 on one device.
struct AdamTensor {
  Tensor* param;
  const Tensor* grad;
  Tensor* exp_avg;
  Tensor* exp_avg_sq;
  double lr, weight_decay;
};
struct AdamShared {
  double beta1, beta2, eps;
  int64_t step;
};
void adam_step_(const std::vector<AdamTensor>& tensors, const AdamShared& hyper, double grad_scale = 1.0);
// Σ over the tensors, in order, of sum_of_squares(tensor): bit-identical to that loop, one device round trip.
double sum_of_squares(const std::vector<Tensor>& tensors);

// ---- WKV (spec §1.5) over k, v [B, T, C] with time_decay, time_first [C]; w = -exp(time_decay) is computed here
// in the tensors' precision (fp32 for training). state_in [B, 3, C] = (aa, bb, pp) or undefined for the zero
// state. The final state is returned when want_state (see cpu/kernels.h for the state's meaning).
// bf16 k, v (CPU and CUDA): y, grad_y and the k, v gradients are bf16, time_decay, time_first, the states and
// their gradients f32; the math is fp32 with u = time_first rounded to bf16 (the CUDA kernels read it so).
struct WkvOutput {
  Tensor y, state;
};
WkvOutput wkv(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
              const Tensor& state_in, bool want_state);
struct WkvGrads {
  Tensor time_decay, time_first, k, v, state;  // state: undefined when there was no state_in
};
// grad_state_out may be undefined (no gradient arrives at the final state). gw and gu are summed over the
// batch in a fixed order.
WkvGrads wkv_backward(const Tensor& time_decay, const Tensor& time_first, const Tensor& k, const Tensor& v,
                      const Tensor& y, const Tensor& grad_y, const Tensor& state_in, const Tensor& grad_state_out);

}  // namespace rwkv::ops
