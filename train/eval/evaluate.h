// Held-out evaluation: mean cross-entropy over consecutive non-overlapping windows of ctx_len + 1 tokens
// (inputs = the first ctx_len, targets = the last ctx_len; an incomplete final window is dropped).
#pragma once

#include <cstdint>
#include <functional>

#include "data/token_source.h"
#include "train/model/model.h"

namespace rwkv {

struct EvalResult {
  double loss = 0;        // mean cross-entropy per predicted token (nats)
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // predicted tokens
  int64_t windows = 0;
};

// Runs the model without recording gradients, `batch` windows at a time, on `device` (the model's parameters
// must already be there). Throws when the data is shorter than one window.
EvalResult evaluate(const Rwkv4& model, const data::TokenSource& source, int64_t ctx_len, int64_t batch,
                    Device device, const std::function<void(int64_t done, int64_t total)>& progress = nullptr);

}  // namespace rwkv
