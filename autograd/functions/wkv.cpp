#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

WkvResult wkv(const Variable& time_decay, const Variable& time_first, const Variable& k, const Variable& v,
              const Variable& state_in) {
  const Tensor state_value = state_in.defined() ? state_in.data() : Tensor();
  ops::WkvOutput out = ops::wkv(time_decay.data(), time_first.data(), k.data(), v.data(), state_value, true);
  Tensor td = time_decay.data(), tf = time_first.data(), kv = k.data(), vv = v.data(), y = out.y;
  std::vector<Variable> outputs = make_outputs(
      "wkv", {out.y, out.state}, {time_decay, time_first, k, v, state_in},
      [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
        ops::WkvGrads grads = ops::wkv_backward(td, tf, kv, vv, y, g[0], state_value, g[1]);
        return {grads.time_decay, grads.time_first, grads.k, grads.v, grads.state};
      });
  return {outputs[0], outputs[1]};
}

}  // namespace rwkv::ag
