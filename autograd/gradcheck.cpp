#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "core/rng.h"

namespace rwkv::ag {

namespace {

double projected(const Tensor& output, const std::vector<double>& projection) {
  const std::vector<double> values = output.to_vector<double>();
  double total = 0;
  for (size_t i = 0; i < values.size(); ++i) total += values[i] * projection[i];
  return total;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<Tensor> values;
  for (const Tensor& input : inputs) {
    RWKV_CHECK(input.dtype() == DType::f64 && input.device().is_cpu(), "gradcheck: inputs must be f64 CPU tensors, ",
               "got ", input.describe());
    values.push_back(input.clone());
  }

  // Analytic gradients of sum(out * R).
  std::vector<Variable> variables;
  for (const Tensor& v : values) variables.emplace_back(v.clone(), true);
  const Variable output = fn(variables);
  RWKV_CHECK(output.data().dtype() == DType::f64, "gradcheck: the function must return f64, got ", output.describe());
  Tensor projection = Tensor::empty(output.shape(), DType::f32);
  Generator generator(options.seed);
  generator.uniform_(projection, -1.0f, 1.0f);
  const Tensor projection64 = projection.to(DType::f64);
  const std::vector<double> r = projection64.to_vector<double>();
  output.backward(projection64);

  GradcheckResult result;
  std::ostringstream report;
  int reported = 0;
  for (size_t which = 0; which < values.size(); ++which) {
    const Tensor& analytic_tensor = variables[which].grad();
    const std::vector<double> analytic = analytic_tensor.defined() ? analytic_tensor.to_vector<double>()
                                                                   : std::vector<double>(values[which].numel(), 0.0);
    double* x = values[which].data<double>();
    for (int64_t i = 0; i < values[which].numel(); ++i) {
      const double original = x[i];
      std::vector<Variable> probe;
      x[i] = original + options.step;
      for (const Tensor& v : values) probe.emplace_back(v, false);
      const double plus = projected(fn(probe).data(), r);
      x[i] = original - options.step;
      const double minus = projected(fn(probe).data(), r);
      x[i] = original;
      const double numeric = (plus - minus) / (2 * options.step);
      const double error = std::abs(analytic[static_cast<size_t>(i)] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, error);
      result.max_rel_error = std::max(result.max_rel_error, error / std::max(std::abs(numeric), 1e-12));
      if (error > options.absolute_tolerance + options.relative_tolerance * std::abs(numeric)) {
        result.passed = false;
        if (reported++ < 8) {
          report << "input " << which << " element " << i << ": analytic " << analytic[static_cast<size_t>(i)]
                 << ", numeric " << numeric << "\n";
        }
      }
    }
  }
  result.report = report.str();
  return result;
}

}  // namespace rwkv::ag
