#include "core/shape.h"

#include <algorithm>

#include "core/error.h"

namespace rwkv {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t extent : shape) n *= extent;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

std::string shape_str(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* what) {
  const int64_t wrapped = dim < 0 ? dim + rank : dim;
  RWKV_CHECK(wrapped >= 0 && wrapped < rank, what, ": dimension ", dim, " is out of range for a tensor of rank ",
             rank);
  return wrapped;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t ea = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t eb = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    RWKV_CHECK(ea == eb || ea == 1 || eb == 1, what, ": shapes ", shape_str(a), " and ", shape_str(b),
               " cannot be broadcast together");
    out[i] = ea == 1 ? eb : ea;
  }
  return out;
}

}  // namespace rwkv
