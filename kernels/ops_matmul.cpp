#include <atomic>

#include "core/op_profile.h"
#include "kernels/checks.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda_dispatch.h"
#include "kernels/ops.h"

namespace rwkv::ops {

namespace {

struct GemmPlan {
  int64_t groups, m, n, k;
  bool shared_b;  // 3-D a with a 2-D b
};

GemmPlan plan_gemm(const char* op, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  detail::check_float_or_bf16_operands(op, {&a, &b});
  RWKV_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && (b.dim() == 3 || b.dim() == 2)), op,
             ": expects 2-D x 2-D, 3-D x 3-D or 3-D x 2-D operands, got ", a.describe(), " and ", b.describe());
  GemmPlan plan{};
  plan.groups = a.dim() == 3 ? a.size(0) : 1;
  plan.shared_b = a.dim() == 3 && b.dim() == 2;
  RWKV_CHECK(b.dim() == 2 || b.size(0) == plan.groups, op, ": batch sizes differ: ", a.describe(), " and ",
             b.describe());
  plan.m = trans_a ? a.size(-1) : a.size(-2);
  plan.k = trans_a ? a.size(-2) : a.size(-1);
  const int64_t kb = trans_b ? b.size(-1) : b.size(-2);
  plan.n = trans_b ? b.size(-2) : b.size(-1);
  RWKV_CHECK(plan.k == kb, op, ": inner dimensions differ: ", a.describe(), (trans_a ? "^T" : ""), " x ",
             b.describe(), (trans_b ? "^T" : ""));
  return plan;
}

Shape result_shape(const Tensor& a, const GemmPlan& plan) {
  return a.dim() == 3 ? Shape{plan.groups, plan.m, plan.n} : Shape{plan.m, plan.n};
}

// The output dtypes a product supports: the operands' own, and f32 for bf16 operands (fp32 accumulation kept).
void check_output_dtype(const char* op, const Tensor& a, DType out_dtype) {
  RWKV_CHECK(out_dtype == a.dtype() || (a.dtype() == DType::bf16 && out_dtype == DType::f32), op, ": a ",
             dtype_name(out_dtype), " output is not supported for ", a.describe(),
             " operands (the operands' dtype, or f32 for bf16 operands)");
}

std::atomic<bool> tf32_allowed{false};

// cuBLAS, row-major: the same cases as the CPU below, the batched ones as one strided-batched call.
void run_gemm_cuda(const GemmPlan& plan, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Tensor& out,
                   double beta) {
  RWKV_CHECK(out.device() == a.device(), "matmul: output ", out.describe(), " is not on the operands' device ",
             a.device().str());
  detail::use_device_of(a);
  const cuda_kernels::FloatIo io = detail::cuda_float_io(a), out_io = detail::cuda_float_io(out);
  const float beta_f = static_cast<float>(beta);
  const bool allow = tf32_allowed.load(std::memory_order_relaxed);
  if (plan.shared_b && !trans_a) {
    cuda_kernels::gemm(io, out_io, false, trans_b, plan.groups * plan.m, plan.n, plan.k, 1.0f, a.raw_data(), plan.k, 0,
                       b.raw_data(), b.size(1), 0, beta_f, out.raw_data(), plan.n, 0, 1, allow);
    return;
  }
  const int64_t a_stride = a.size(-2) * a.size(-1);
  const int64_t b_stride = plan.shared_b ? 0 : b.size(-2) * b.size(-1);
  cuda_kernels::gemm(io, out_io, trans_a, trans_b, plan.m, plan.n, plan.k, 1.0f, a.raw_data(), a.size(-1), a_stride,
                     b.raw_data(), b.size(-1), b_stride, beta_f, out.raw_data(), plan.n, plan.m * plan.n, plan.groups,
                     allow);
}

// OpenBLAS in the operands' precision; bf16 operands are widened to fp32 (sgemm) and a bf16 output is the fp32
// result (with beta: alpha·AB + beta·out in fp32) rounded once.
void run_gemm_cpu(const char* op, const GemmPlan& plan, const Tensor& a, const Tensor& b, bool trans_a,
                  bool trans_b, Tensor& out, double beta) {
  if (a.dtype() == DType::bf16) {
    const Tensor a32 = a.to(DType::f32), b32 = b.to(DType::f32);
    if (out.dtype() == DType::f32) return run_gemm_cpu(op, plan, a32, b32, trans_a, trans_b, out, beta);
    Tensor out32 = beta == 0.0 ? Tensor::empty(out.shape(), DType::f32) : out.to(DType::f32);
    run_gemm_cpu(op, plan, a32, b32, trans_a, trans_b, out32, beta);
    out.copy_(out32);
    return;
  }
  // A shared 2-D B with an untransposed 3-D A is one big GEMM over the flattened rows.
  if (plan.shared_b && !trans_a) {
    detail::dispatch_float(op, a.dtype(), [&](auto zero) {
      using T = decltype(zero);
      cpu::gemm<T>(false, trans_b, plan.groups * plan.m, plan.n, plan.k, T(1), a.data<T>(), plan.k, b.data<T>(),
                   b.size(1), static_cast<T>(beta), out.data<T>(), plan.n);
    });
    return;
  }
  const int64_t a_stride = a.size(-2) * a.size(-1);
  const int64_t b_stride = plan.shared_b ? 0 : b.size(-2) * b.size(-1);
  detail::dispatch_float(op, a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    for (int64_t g = 0; g < plan.groups; ++g) {
      cpu::gemm<T>(trans_a, trans_b, plan.m, plan.n, plan.k, T(1), a.data<T>() + g * a_stride, a.size(-1),
                   b.data<T>() + g * b_stride, b.size(-1), static_cast<T>(beta),
                   out.data<T>() + g * plan.m * plan.n, plan.n);
    }
  });
}

void run_gemm(const char* op, const GemmPlan& plan, const Tensor& a_in, const Tensor& b_in, bool trans_a,
              bool trans_b, Tensor& out, double beta) {
  const Tensor a = a_in.contiguous();
  const Tensor b = b_in.contiguous();
  if (a.device().is_cuda()) return run_gemm_cuda(plan, a, b, trans_a, trans_b, out, beta);
  run_gemm_cpu(op, plan, a, b, trans_a, trans_b, out, beta);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  return matmul(a, b, trans_a, trans_b, a.dtype());
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, DType out_dtype) {
  profile::Scope profile_scope("gemm", a.device());
  const GemmPlan plan = plan_gemm("matmul", a, b, trans_a, trans_b);
  check_output_dtype("matmul", a, out_dtype);
  Tensor out = Tensor::empty(result_shape(a, plan), out_dtype, a.device());
  run_gemm("matmul", plan, a, b, trans_a, trans_b, out, 0.0);
  return out;
}

void matmul_into(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, Tensor& out, double beta) {
  profile::Scope profile_scope("gemm", a.device());
  RWKV_CHECK(out.defined(), "matmul_into: the output is undefined");
  detail::check_same_device("matmul_into", {&a, &b, &out});
  const GemmPlan plan = plan_gemm("matmul_into", a, b, trans_a, trans_b);
  check_output_dtype("matmul_into", a, out.dtype());
  RWKV_CHECK(out.shape() == result_shape(a, plan) && out.is_contiguous(), "matmul_into: output ", out.describe(),
             " does not match the product's shape ", shape_str(result_shape(a, plan)));
  run_gemm("matmul_into", plan, a, b, trans_a, trans_b, out, beta);
}

void set_allow_tf32(bool allow) { tf32_allowed.store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return tf32_allowed.load(std::memory_order_relaxed); }

}  // namespace rwkv::ops
