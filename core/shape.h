// Shapes and strides: a shape is a list of extents, outermost first; strides are in elements.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkv {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
// Normalises a possibly negative dimension index; `what` names the op for the error message.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what);
// NumPy broadcasting of two shapes (aligned at the trailing dimension); throws naming `what` if impossible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* what);

}  // namespace rwkv
