#include "autograd/dropout.h"

#include "autograd/node.h"

namespace rwkv::ag {

Variable keyed_dropout(const Variable& x, const ops::DropoutKey& key) {
  if (key.probability == 0) return x;
  return make_output("keyed_dropout", ops::keyed_dropout(x.data(), key), {x},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {ops::keyed_dropout(g[0], key)}; });
}

}  // namespace rwkv::ag
