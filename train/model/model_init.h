// The official RWKV-4 v4neo initialisation (spec §3.1-3.2), deterministic from the seed.
#pragma once

#include <cstdint>

#include "train/model/model.h"

namespace rwkv {

// emb ~ U(-lr_init, +lr_init); LayerNorms 1/0; the time_* curves of §3.1; att.key/receptance/output and
// ffn.value/receptance zero; every other matrix orthogonal with gain sqrt(out/in) when out > in (head: × 0.5).
// Random draws happen in state_dict order from one Philox stream seeded with `seed`.
void initialize_rwkv4(Rwkv4& model, double lr_init, uint64_t seed);

}  // namespace rwkv
