#include "core/dtype.h"

#include "core/error.h"

namespace rwkv {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u16: return 2;
    case DType::f64: return 8;
  }
  RWKV_FAIL("dtype_size: invalid dtype ", static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u16: return "u16";
    case DType::f64: return "f64";
  }
  return "invalid";
}

bool is_floating(DType dtype) { return dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f64; }

DType parse_dtype(const std::string& name) {
  for (DType d : {DType::f32, DType::bf16, DType::i32, DType::i64, DType::u16, DType::f64}) {
    if (name == dtype_name(d)) return d;
  }
  RWKV_FAIL("unknown dtype '", name, "' (expected f32, bf16, f64, i32, i64 or u16)");
}

}  // namespace rwkv
