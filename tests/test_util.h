// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace rwkv::testing {

// Uniform random values in [low, high) (never all zero), in the requested floating dtype, on the CPU.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f32, float low = -1.0f,
                            float high = 1.0f) {
  Tensor t = Tensor::empty(shape);
  Generator generator(seed);
  generator.uniform_(t, low, high);
  return t.to(dtype);
}

inline Tensor random_ids(const Shape& shape, int64_t limit, uint64_t seed, DType dtype = DType::i64) {
  Generator generator(seed);
  std::vector<int64_t> ids(static_cast<size_t>(shape_numel(shape)));
  for (auto& id : ids) id = static_cast<int64_t>(generator.next_u64() % static_cast<uint64_t>(limit));
  return Tensor::from_vector(ids, shape).to(dtype);
}

// max |a - b| / max(max |b|, tiny): one relative error for a whole tensor.
inline double relative_error(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  EXPECT_EQ(av.size(), bv.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < av.size() && i < bv.size(); ++i) {
    diff = std::max(diff, std::abs(av[i] - bv[i]));
    scale = std::max(scale, std::abs(bv[i]));
  }
  return diff / scale;
}

// ||a - b|| / ||b|| over the whole tensor (an error of the tensor as a whole, not of its smallest element).
inline double norm_relative_error(const Tensor& a, const Tensor& b) {
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  EXPECT_EQ(av.size(), bv.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < av.size() && i < bv.size(); ++i) {
    diff += (av[i] - bv[i]) * (av[i] - bv[i]);
    norm += bv[i] * bv[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

// The message of the rwkv::Error `action` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace rwkv::testing
