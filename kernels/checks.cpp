#include "kernels/checks.h"

namespace rwkv::ops::detail {

void check_float_operands(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    RWKV_CHECK(t->defined(), op, ": an operand is undefined");
    if (!first) {
      first = t;
      RWKV_CHECK(t->dtype() == DType::f32 || (t->dtype() == DType::f64 && t->device().is_cpu()), op,
                 ": unsupported operand ", t->describe(), " (f32, or f64 on the CPU)");
      continue;
    }
    RWKV_CHECK(t->device() == first->device(), op, ": operands on different devices: ", first->describe(),
               " and ", t->describe());
    RWKV_CHECK(t->dtype() == first->dtype(), op, ": operands of different dtypes: ", first->describe(), " and ",
               t->describe());
  }
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
