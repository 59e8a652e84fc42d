#include "kernels/checks.h"

#include "kernels/cuda_dispatch.h"

namespace rwkv::ops::detail {

namespace {

template <typename Range>
void check_same_device_of(const char* op, const Range& tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    RWKV_CHECK(t->device() == first->device(), op, ": operands on different devices: ", first->describe(), " and ",
               t->describe());
  }
}

void check_operands(const char* op, std::initializer_list<const Tensor*> tensors, bool allow_bf16) {
  if (tensors.size() == 0) return;
  for (const Tensor* t : tensors) RWKV_CHECK(t->defined(), op, ": an operand is undefined");
  const Tensor* first = *tensors.begin();
  const bool supported = first->dtype() == DType::f32 || (allow_bf16 && first->dtype() == DType::bf16) ||
                         (first->dtype() == DType::f64 && first->device().is_cpu());
  RWKV_CHECK(supported, op, ": unsupported operand ", first->describe(),
             allow_bf16 ? " (f32, bf16, or f64 on the CPU)" : " (f32, or f64 on the CPU)");
  check_same_device_of(op, tensors);
  for (const Tensor* t : tensors) {
    RWKV_CHECK(t->dtype() == first->dtype(), op, ": operands of different dtypes: ", first->describe(), " and ",
               t->describe());
  }
}

}  // namespace

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  check_same_device_of(op, tensors);
}

void check_same_device(const char* op, const std::vector<const Tensor*>& tensors) {
  check_same_device_of(op, tensors);
}

void check_float_operands(const char* op, std::initializer_list<const Tensor*> tensors) {
  check_operands(op, tensors, false);
}

void check_float_or_bf16_operands(const char* op, std::initializer_list<const Tensor*> tensors) {
  check_operands(op, tensors, true);
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  RWKV_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.describe(), " vs ", b.describe());
}

void check_ids(const char* op, const Tensor& ids) {
  RWKV_CHECK(ids.defined(), op, ": ids are undefined");
  RWKV_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64, op, ": ids must be i32 or i64, got ",
             ids.describe());
}

void check_id_range(const char* op, const Tensor& ids, int64_t limit, const char* what) {
  if (ids.device().is_cuda()) {
    // On the device: one pass finds the first bad position and only that scalar comes back; the value is
    // fetched only on failure.
    const Tensor flat = ids.contiguous();
    use_device_of(flat);
    const int64_t position =
        cuda_kernels::first_id_out_of_range(flat.raw_data(), cuda_id_type(flat), flat.numel(), limit);
    if (position < 0) return;
    const int64_t value = flat.view({flat.numel()}).slice(0, position, position + 1).to_vector<int64_t>()[0];
    RWKV_FAIL(op, ": ", what, " ", value, " at position ", position, " is out of range [0, ", limit, ") (ids ",
              ids.describe(), ")");
  }
  const std::vector<int64_t> values = ids.to_vector<int64_t>();
  for (size_t i = 0; i < values.size(); ++i) {
    RWKV_CHECK(values[i] >= 0 && values[i] < limit, op, ": ", what, " ", values[i], " at position ", i,
               " is out of range [0, ", limit, ") (ids ", ids.describe(), ")");
  }
}

void no_cuda_kernel(const char* op, const Tensor& t) {
  RWKV_FAIL(op, ": no CUDA kernel for this op yet (got ", t.describe(), "); run it on the CPU");
}

}  // namespace rwkv::ops::detail
