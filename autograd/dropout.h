// Differentiable keyed dropout (kernels/dropout.h): y = x · mask, and the gradient goes back through the same
// mask, which is recomputed from the key instead of stored.
#pragma once

#include "autograd/variable.h"
#include "kernels/dropout.h"

namespace rwkv::ag {

Variable keyed_dropout(const Variable& x, const ops::DropoutKey& key);

}  // namespace rwkv::ag
