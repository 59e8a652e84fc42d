// Activation checkpointing: run `fn` without recording, keep only its inputs, and re-run it with recording
// during backward to get the gradients. Trades one extra forward for the memory of everything fn saves
// (an RWKV block's activations). Parameters that fn captures receive their gradients during the re-run.
// fn must be deterministic (same inputs, same outputs).
#pragma once

#include <functional>
#include <vector>

#include "autograd/variable.h"

namespace rwkv::ag {

using CheckpointFn = std::function<std::vector<Variable>(const std::vector<Variable>& inputs)>;

std::vector<Variable> checkpoint(const CheckpointFn& fn, const std::vector<Variable>& inputs);

}  // namespace rwkv::ag
