#include "kernels/op_kinds.h"

namespace rwkv {

const char* unary_name(Unary op) {
  switch (op) {
    case Unary::neg: return "neg";
    case Unary::exp: return "exp";
    case Unary::sigmoid: return "sigmoid";
    case Unary::relu: return "relu";
    case Unary::square: return "square";
  }
  return "unary";
}

const char* binary_name(Binary op) {
  switch (op) {
    case Binary::add: return "add";
    case Binary::sub: return "sub";
    case Binary::mul: return "mul";
    case Binary::div: return "div";
  }
  return "binary";
}

}  // namespace rwkv
