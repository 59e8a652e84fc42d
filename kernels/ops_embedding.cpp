#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {

Tensor embedding_cuda(const Tensor& table_in, const Tensor& ids_in) {
  detail::check_id_range("embedding", ids_in, table_in.size(0), "token id");
  const Tensor table = table_in.contiguous(), ids = ids_in.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  detail::use_device_of(table);
  cuda_kernels::embedding_forward(table.data<float>(), table.size(1), ids.raw_data(), detail::cuda_id_type(ids),
                                  ids.numel(), out.data<float>());
  return out;
}

// The ids are not range-checked again here: they are the forward's, which embedding_cuda checked, and a check
// reads a device flag on the host (one synchronisation per step). An id >= vocab reaching this directly would
// sort on truncated keys and scatter its row to a wrong place; every caller passes the forward's ids.
Tensor embedding_backward_cuda(const Tensor& grad_out_in, const Tensor& ids_in, int64_t vocab) {
  RWKV_CHECK(ids_in.device() == grad_out_in.device(), "embedding_backward: ids ", ids_in.describe(),
             " and gradient ", grad_out_in.describe(), " are on different devices");
  const Tensor grad_out = grad_out_in.contiguous(), ids = ids_in.contiguous();
  const int64_t dim = grad_out.size(-1);
  RWKV_CHECK(grad_out.numel() == ids.numel() * dim, "embedding_backward: gradient ", grad_out.describe(),
             " does not match ids ", ids.describe());
  Tensor grad_table = Tensor::empty({vocab, dim}, grad_out.dtype(), grad_out.device());
  detail::use_device_of(grad_out);
  cuda_kernels::embedding_backward(grad_out.data<float>(), ids.raw_data(), detail::cuda_id_type(ids), ids.numel(),
                                   vocab, dim, grad_table.data<float>());
  return grad_table;
}

}  // namespace

Tensor embedding(const Tensor& table_in, const Tensor& ids_in) {
  profile::Scope profile_scope("embedding", table_in.device());
  detail::check_float_operands("embedding", {&table_in});
  detail::check_ids("embedding", ids_in);
  RWKV_CHECK(table_in.dim() == 2, "embedding: table must be [vocab, dim], got ", table_in.describe());
  RWKV_CHECK(ids_in.device() == table_in.device(), "embedding: ids ", ids_in.describe(), " and table ",
             table_in.describe(), " are on different devices");
  if (table_in.device().is_cuda()) return embedding_cuda(table_in, ids_in);
  detail::check_id_range("embedding", ids_in, table_in.size(0), "token id");
  const Tensor table = table_in.contiguous(), ids = ids_in.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, table.dtype());
  detail::dispatch_float("embedding", table.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::dispatch_ids("embedding", ids.dtype(), [&](auto id_zero) {
      using Id = decltype(id_zero);
      cpu::embedding_forward<T, Id>(table.data<T>(), table.size(1), ids.data<Id>(), ids.numel(), out.data<T>());
    });
  });
  return out;
}

Tensor embedding_backward(const Tensor& grad_out_in, const Tensor& ids_in, int64_t vocab) {
  profile::Scope profile_scope("embedding", grad_out_in.device());
  detail::check_float_operands("embedding_backward", {&grad_out_in});
  detail::check_ids("embedding_backward", ids_in);
  detail::check_same_device("embedding_backward", {&grad_out_in, &ids_in});
  if (grad_out_in.device().is_cuda()) return embedding_backward_cuda(grad_out_in, ids_in, vocab);
  const Tensor grad_out = grad_out_in.contiguous(), ids = ids_in.contiguous();
  const int64_t dim = grad_out.size(-1);
  RWKV_CHECK(grad_out.numel() == ids.numel() * dim, "embedding_backward: gradient ", grad_out.describe(),
             " does not match ids ", ids.describe());
  Tensor grad_table = Tensor::empty({vocab, dim}, grad_out.dtype());
  detail::dispatch_float("embedding_backward", grad_out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    detail::dispatch_ids("embedding_backward", ids.dtype(), [&](auto id_zero) {
      using Id = decltype(id_zero);
      cpu::embedding_backward<T, Id>(grad_out.data<T>(), ids.data<Id>(), ids.numel(), vocab, dim,
                                     grad_table.data<T>());
    });
  });
  return grad_table;
}

}  // namespace rwkv::ops
