#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {
void check_logits_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  detail::check_float_operands(op, {&logits});
  detail::check_ids(op, targets);
  RWKV_CHECK(logits.dim() >= 1 && logits.numel() / logits.size(-1) == targets.numel() &&
                 Shape(logits.shape().begin(), logits.shape().end() - 1) == targets.shape(),
             op, ": logits ", logits.describe(), " and targets ", targets.describe(),
             " disagree (expected targets of the logits' leading shape)");
  RWKV_CHECK(targets.numel() > 0, op, ": no positions");
  detail::check_same_device(op, {&logits, &targets});
}

CrossEntropyOutput cross_entropy_cuda(const Tensor& logits_in, const Tensor& targets_in) {
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const int64_t vocab = logits.size(-1), rows = targets.numel();
  CrossEntropyOutput out{Tensor::empty({}, logits.dtype(), logits.device()),
                         Tensor::empty(targets.shape(), logits.dtype(), logits.device())};
  detail::use_device_of(logits);
  cuda_kernels::cross_entropy_forward(logits.data<float>(), targets.raw_data(), detail::cuda_id_type(targets), rows,
                                      vocab, out.logsumexp.data<float>(), out.loss.data<float>());
  return out;
}

Tensor cross_entropy_backward_cuda(double grad_loss, const Tensor& logits_in, const Tensor& targets_in,
                                   const Tensor& logsumexp_in) {
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const Tensor logsumexp = logsumexp_in.contiguous();
  const int64_t vocab = logits.size(-1), rows = targets.numel();
  Tensor grad = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  detail::use_device_of(logits);
  cuda_kernels::cross_entropy_backward(logits.data<float>(), targets.raw_data(), detail::cuda_id_type(targets),
                                       logsumexp.data<float>(), rows, vocab,
                                       static_cast<float>(grad_loss / static_cast<double>(rows)), grad.data<float>());
  return grad;
}
}  // namespace

void check_ids_below(const char* op, const Tensor& ids, int64_t limit, const char* what) {
  profile::Scope profile_scope("id range checks", ids.device());
  detail::check_ids(op, ids);
  detail::check_id_range(op, ids, limit, what);
}

CrossEntropyOutput cross_entropy(const Tensor& logits_in, const Tensor& targets_in, IdCheck check) {
  profile::Scope profile_scope("cross-entropy", logits_in.device());
  check_logits_targets("cross_entropy", logits_in, targets_in);
  if (check == IdCheck::run) detail::check_id_range("cross_entropy", targets_in, logits_in.size(-1), "target");
  if (logits_in.device().is_cuda()) return cross_entropy_cuda(logits_in, targets_in);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const int64_t vocab = logits.size(-1), rows = targets.numel();
  CrossEntropyOutput out{Tensor::empty({}, logits.dtype()), Tensor::empty(targets.shape(), logits.dtype())};
  detail::dispatch_float("cross_entropy", logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::dispatch_ids("cross_entropy", targets.dtype(), [&](auto id_zero) {
      using Id = decltype(id_zero);
      *out.loss.data<T>() = static_cast<T>(cpu::cross_entropy_forward<T, Id>(
          logits.data<T>(), targets.data<Id>(), rows, vocab, out.logsumexp.data<T>()));
    });
  });
  return out;
}

Tensor cross_entropy_backward(double grad_loss, const Tensor& logits_in, const Tensor& targets_in,
                              const Tensor& logsumexp_in) {
  profile::Scope profile_scope("cross-entropy", logits_in.device());
  check_logits_targets("cross_entropy_backward", logits_in, targets_in);
  detail::check_same_device("cross_entropy_backward", {&logits_in, &targets_in, &logsumexp_in});
  RWKV_CHECK(logsumexp_in.defined() && logsumexp_in.numel() == targets_in.numel() &&
                 logsumexp_in.dtype() == logits_in.dtype(),
             "cross_entropy_backward: logsumexp ", logsumexp_in.defined() ? logsumexp_in.describe() : "undefined",
             " does not match logits ", logits_in.describe(), " (one value per position, the logits' dtype)");
  if (logits_in.device().is_cuda()) return cross_entropy_backward_cuda(grad_loss, logits_in, targets_in, logsumexp_in);
  const Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  const Tensor logsumexp = logsumexp_in.contiguous();
  const int64_t vocab = logits.size(-1), rows = targets.numel();
  Tensor grad = Tensor::empty(logits.shape(), logits.dtype());
  detail::dispatch_float("cross_entropy_backward", logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::dispatch_ids("cross_entropy_backward", targets.dtype(), [&](auto id_zero) {
      using Id = decltype(id_zero);
      cpu::cross_entropy_backward<T, Id>(logits.data<T>(), targets.data<Id>(), logsumexp.data<T>(), rows, vocab,
                                         static_cast<T>(grad_loss / static_cast<double>(rows)), grad.data<T>());
    });
  });
  return grad;
}

void l2wrap_backward_(Tensor& grad_logits, const Tensor& logits_in, double factor) {
  profile::Scope profile_scope("cross-entropy", logits_in.device());
  detail::check_float_operands("l2wrap_backward", {&grad_logits, &logits_in});
  detail::check_same_shape("l2wrap_backward", grad_logits, logits_in);
  RWKV_CHECK(grad_logits.is_contiguous(), "l2wrap_backward: gradient must be contiguous");
  const Tensor logits = logits_in.contiguous();
  const int64_t vocab = logits.size(-1), rows = logits.numel() / vocab;
  if (logits.device().is_cuda()) {
    detail::use_device_of(logits);
    cuda_kernels::l2wrap_backward(logits.data<float>(), rows, vocab, static_cast<float>(factor),
                                  grad_logits.data<float>());
    return;
  }
  detail::dispatch_float("l2wrap_backward", logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cpu::l2wrap_backward<T>(logits.data<T>(), rows, vocab, static_cast<T>(factor), grad_logits.data<T>());
  });
}

}  // namespace rwkv::ops
