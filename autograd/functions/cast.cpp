#include "autograd/functions.h"
#include "autograd/node.h"

namespace rwkv::ag {

Variable cast(const Variable& x, DType dtype) {
  RWKV_CHECK(is_floating(dtype) && is_floating(x.data().dtype()), "cast: only floating dtypes convert here (",
             x.describe(), " to ", dtype_name(dtype), ")");
  const DType input_dtype = x.data().dtype();
  return make_output("cast", x.data().to(dtype), {x}, [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {g[0].to(input_dtype)};
  });
}

}  // namespace rwkv::ag
