// The op families shared by the CPU and CUDA kernels.
#pragma once

namespace rwkv {

enum class Unary { neg, exp, sigmoid, relu, square };
enum class Binary { add, sub, mul, div };

const char* unary_name(Unary op);
const char* binary_name(Binary op);

}  // namespace rwkv
