// Gradient checking: compares autograd's gradients with central finite differences computed in double
// precision. The function's output is projected on a fixed random tensor R (loss = sum(out * R)) so every
// output element and every input element is exercised, not just the sum.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace rwkv::ag {

struct GradcheckOptions {
  double step = 1e-6;             // finite-difference step
  double absolute_tolerance = 1e-8;
  double relative_tolerance = 1e-6;  // |analytic - numeric| <= abs_tol + rel_tol * |numeric|
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool passed = true;
  double max_abs_error = 0;
  double max_rel_error = 0;
  std::string report;  // the first mismatches: input, element, analytic, numeric
};

using GradcheckFn = std::function<Variable(const std::vector<Variable>& inputs)>;

// `inputs` must be f64 CPU tensors (they are copied); each one is differentiated. Integer arguments such as
// token ids are captured by `fn` instead.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace rwkv::ag
