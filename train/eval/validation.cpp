#include "train/eval/validation.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/error.h"
#include "data/dataset.h"
#include "data/token_dtype.h"
#include "train/eval/evaluate.h"

namespace rwkv {

data::TokenSource token_range(const data::TokenSource& source, uint64_t begin, uint64_t count) {
  RWKV_CHECK(count > 0 && begin + count <= source.size(), "token range [", begin, ", ", begin + count,
             ") is outside the ", source.size(), " tokens of the source");
  std::vector<data::TokenShard> shards;
  const uint64_t end = begin + count;
  for (const data::TokenShard& shard : source.shards()) {
    const uint64_t first = std::max(begin, shard.begin), last = std::min(end, shard.begin + shard.size);
    if (first >= last) continue;
    data::TokenShard view = shard;  // shares the mapping (owner)
    view.tokens = shard.tokens + (first - shard.begin) * data::itemsize(shard.dtype);
    view.size = last - first;
    view.documents.reset();
    shards.push_back(std::move(view));
  }
  return data::TokenSource(source.kind(), std::move(shards), source.vocab_size());
}

ValidationSet::ValidationSet(const TrainConfig& config, int64_t vocab_size, int rank, int world)
    : ctx_len_(config.ctx_len), batch_(config.micro_bsz), data_file_(config.val_data_file) {
  const std::string what = "config: val_data_file '" + data_file_ + "': ";
  try {
    // utf-8 text reads proj_dir/vocab.json, which the training data wrote: the same ids for the same characters.
    const data::TokenSource source = data::open_dataset({config.val_data_file, config.val_data_type, config.proj_dir});
    kind_ = source.kind();
    source_tokens_ = source.size();
    const auto window = static_cast<uint64_t>(ctx_len_ + 1);
    windows_ = static_cast<int64_t>(source.size() / window);
    RWKV_CHECK(windows_ > 0, source.size(), " tokens, fewer than one window of ctx_len + 1 = ", window);
    if (config.val_max_windows > 0) windows_ = std::min(windows_, config.val_max_windows);
    // Every evaluated token is checked now, so that a bad id is an error before training rather than at the
    // first evaluation (the evaluated part is read at every evaluation anyway).
    token_range(source, 0, static_cast<uint64_t>(windows_) * window).check_vocab(static_cast<uint64_t>(vocab_size));
    // Rank r evaluates windows [r W / world, (r + 1) W / world).
    const int64_t first = windows_ * rank / world, last = windows_ * (rank + 1) / world;
    if (last > first) {
      share_.emplace(token_range(source, static_cast<uint64_t>(first) * window,
                                 static_cast<uint64_t>(last - first) * window));
    }
  } catch (const Error& e) {
    RWKV_FAIL(what, e.what());
  }
}

std::string ValidationSet::describe() const {
  return detail::concat(data_file_, ": ", windows_, " windows of ", ctx_len_ + 1, " tokens (", kind_, ", ",
                        source_tokens_, " tokens in all)");
}

ValidationRecord ValidationSet::evaluate(const Rwkv4& model, Device device, int64_t step,
                                         dist::Communicator& communicator) const {
  ValidationRecord record;
  record.step = step;
  EvalResult mine;
  if (share_) mine = rwkv::evaluate(model, *share_, ctx_len_, batch_, device);
  if (communicator.world_size() == 1) {
    record.loss = mine.loss;  // exactly what `rwkv eval` reports for the same windows
  } else {
    std::array<double, 1> loss_sum{mine.loss * static_cast<double>(mine.windows)};
    communicator.all_reduce_sum(loss_sum);
    record.loss = loss_sum[0] / static_cast<double>(windows_);
  }
  record.perplexity = std::exp(record.loss);
  record.tokens = windows_ * ctx_len_;
  return record;
}

}  // namespace rwkv
