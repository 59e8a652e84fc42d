#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

namespace {

Variable binary_op(Binary op, const Variable& a, const Variable& b) {
  Tensor out = ops::binary(op, a.data(), b.data());
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  const Shape a_shape = a.shape(), b_shape = b.shape();
  // add/sub need no values; mul needs the other operand; div needs b (and a for b's gradient, via the output).
  Tensor a_value = (op == Binary::mul && need_b) ? a.data() : Tensor();
  Tensor b_value = (op == Binary::mul && need_a) || op == Binary::div ? b.data() : Tensor();
  Tensor out_value = (op == Binary::div && need_b) ? out : Tensor();
  return make_output(binary_name(op), std::move(out), {a, b},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const Tensor& gy = g[0];
                       Tensor ga, gb;
                       switch (op) {
                         case Binary::add:
                           if (need_a) ga = gy;
                           if (need_b) gb = gy;
                           break;
                         case Binary::sub:
                           if (need_a) ga = gy;
                           if (need_b) gb = ops::unary(Unary::neg, gy);
                           break;
                         case Binary::mul:
                           if (need_a) ga = ops::binary(Binary::mul, gy, b_value);
                           if (need_b) gb = ops::binary(Binary::mul, gy, a_value);
                           break;
                         case Binary::div:
                           // y = a / b: da = gy / b, db = -gy * y / b.
                           if (need_a) ga = ops::binary(Binary::div, gy, b_value);
                           if (need_b) {
                             gb = ops::unary(Unary::neg, ops::binary(Binary::div,
                                                                     ops::binary(Binary::mul, gy, out_value),
                                                                     b_value));
                           }
                           break;
                       }
                       if (ga.defined()) ga = ops::sum_to_shape(ga, a_shape);
                       if (gb.defined()) gb = ops::sum_to_shape(gb, b_shape);
                       return {ga, gb};
                     });
}

Variable unary_op(Unary op, const Variable& x) {
  Tensor out = ops::unary(op, x.data());
  const bool uses_output = op == Unary::exp || op == Unary::sigmoid;
  const bool uses_input = op == Unary::relu || op == Unary::square;
  Tensor input = uses_input ? x.data() : Tensor();
  Tensor output = uses_output ? out : Tensor();
  return make_output(unary_name(op), std::move(out), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {ops::unary_backward(op, g[0], input, output)};
                     });
}

Variable affine_op(const char* name, const Variable& x, double scale, double shift) {
  return make_output(name, ops::affine(x.data(), scale, shift), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       return {scale == 1.0 ? g[0] : ops::affine(g[0], scale, 0.0)};
                     });
}

}  // namespace

Variable add(const Variable& a, const Variable& b) { return binary_op(Binary::add, a, b); }
Variable sub(const Variable& a, const Variable& b) { return binary_op(Binary::sub, a, b); }
Variable mul(const Variable& a, const Variable& b) { return binary_op(Binary::mul, a, b); }
Variable div(const Variable& a, const Variable& b) { return binary_op(Binary::div, a, b); }
Variable add_scalar(const Variable& x, double value) { return affine_op("add_scalar", x, 1.0, value); }
Variable mul_scalar(const Variable& x, double value) { return affine_op("mul_scalar", x, value, 0.0); }
Variable rsub_scalar(double value, const Variable& x) { return affine_op("rsub_scalar", x, -1.0, value); }
Variable neg(const Variable& x) { return unary_op(Unary::neg, x); }
Variable exp(const Variable& x) { return unary_op(Unary::exp, x); }
Variable sigmoid(const Variable& x) { return unary_op(Unary::sigmoid, x); }
Variable relu(const Variable& x) { return unary_op(Unary::relu, x); }
Variable square(const Variable& x) { return unary_op(Unary::square, x); }

}  // namespace rwkv::ag
