// Helpers of the CPU-vs-CUDA harness (tests/kernels/cuda_*_test.cpp). Every suite there is named Cuda* and
// skips when the machine has no CUDA device.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <string>

#include "core/cuda_runtime.h"
#include "tests/test_util.h"

namespace rwkv::testing {

class CudaTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

inline Tensor on_gpu(const Tensor& t) { return t.to(Device::cuda(0)); }
// The double-precision CPU reference copy of `t`, wherever `t` lives: references built from GPU outputs (a
// forward's saved statistics fed to a CPU backward) must not mix devices or read device memory on the host.
inline Tensor f64(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64); }

// relative_error(actual, reference) <= tolerance; the measured error is printed so that tolerances can be
// tightened from a GPU run's log.
inline void expect_close(const Tensor& actual, const Tensor& reference, double tolerance, const std::string& what) {
  ASSERT_EQ(actual.shape(), reference.shape()) << what;
  const double error = relative_error(actual, reference);
  std::cout << "[ error    ] " << what << ": " << error << " (tolerance " << tolerance << ")\n";
  EXPECT_LE(error, tolerance) << what;
  for (double value : actual.to_vector<double>()) {
    if (!std::isfinite(value)) {
      ADD_FAILURE() << what << ": non-finite value " << value;
      break;
    }
  }
}

// Same values bit for bit (f32 and bf16 convert to double exactly).
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace rwkv::testing
