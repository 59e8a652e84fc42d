// Validation during training: the held-out loss of val_data_file, measured with the same evaluation as
// `rwkv eval` (train/eval/evaluate.h: consecutive non-overlapping windows of ctx_len + 1 tokens, no gradients).
// Every data-parallel rank evaluates a contiguous share of the windows and one all-reduce combines them, so
// all ranks take part in the same collectives and none waits for the others' evaluation.
#pragma once

#include <cstdint>
#include <optional>

#include "data/token_source.h"
#include "train/config/config.h"
#include "train/dist/communicator.h"
#include "train/model/model.h"

namespace rwkv {

// The held-out loss of val_data_file after `step` (evaluated at val_every steps and at the end of the run).
struct ValidationRecord {
  int64_t step = 0;
  double loss = 0;        // mean cross-entropy per predicted token (nats)
  double perplexity = 0;  // exp(loss)
  int64_t tokens = 0;     // predicted tokens
};

class ValidationSet {
public:
  // Opens config.val_data_file and checks it before training starts: the files exist, every evaluated token is
  // below vocab_size, and there is at least one window of ctx_len + 1 tokens. Errors name val_data_file.
  ValidationSet(const TrainConfig& config, int64_t vocab_size, int rank, int world);

  int64_t windows() const { return windows_; }  // evaluated per validation, all ranks together
  std::string describe() const;                  // for the startup table

  // The mean loss over all windows, combined across the ranks of `communicator` (every rank must call this).
  ValidationRecord evaluate(const Rwkv4& model, Device device, int64_t step, dist::Communicator& communicator) const;

private:
  int64_t ctx_len_;
  int64_t batch_;
  int64_t windows_ = 0;
  std::string data_file_;
  std::string kind_;
  uint64_t source_tokens_ = 0;
  std::optional<data::TokenSource> share_;  // this rank's windows; empty when it has none
};

// The tokens [begin, begin + count) of `source` as a source of their own (no copy: the shards are views).
data::TokenSource token_range(const data::TokenSource& source, uint64_t begin, uint64_t count);

}  // namespace rwkv
