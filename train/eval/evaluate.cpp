#include "train/eval/evaluate.h"

#include <cmath>

#include "autograd/functions.h"
#include "data/batch_builder.h"

namespace rwkv {

EvalResult evaluate(const Rwkv4& model, const data::TokenSource& source, int64_t ctx_len, int64_t batch,
                    Device device, const std::function<void(int64_t done, int64_t total)>& progress) {
  RWKV_CHECK(ctx_len > 0 && batch > 0, "eval: ctx_len and batch must be positive");
  const data::SequentialSampler sampler(source.size(), static_cast<uint64_t>(ctx_len));
  const auto windows = static_cast<int64_t>(sampler.window_count());
  RWKV_CHECK(windows > 0, "eval: the data has ", source.size(), " tokens, fewer than one window of ctx_len + 1 = ",
             ctx_len + 1);
  const auto vocab = static_cast<uint64_t>(model.config().vocab_size);
  ag::NoGradGuard no_grad;
  double loss_sum = 0;  // sum over windows of the window-mean loss (every window has ctx_len targets)

  auto run = [&](const data::BatchBuilder& builder, uint64_t step, int64_t rows) {
    std::vector<int32_t> x(static_cast<size_t>(rows * ctx_len)), y(x.size());
    builder.fill(step, x, y);
    const Tensor inputs = Tensor::from_vector(x, {rows, ctx_len}).to(device);
    const Tensor targets = Tensor::from_vector(y, {rows, ctx_len}).to(device);
    const ag::Variable logits = model.forward(inputs);
    loss_sum += static_cast<double>(ag::cross_entropy(logits, targets).data().item()) * static_cast<double>(rows);
  };
  // Full batches, then the remaining windows one at a time (SequentialSampler step s of micro_bsz 1 is window s).
  const int64_t full = windows / batch;
  const data::BatchBuilder batched(source, sampler, vocab, static_cast<uint64_t>(batch));
  for (int64_t step = 0; step < full; ++step) {
    run(batched, static_cast<uint64_t>(step), batch);
    if (progress) progress((step + 1) * batch, windows);
  }
  const data::BatchBuilder single(source, sampler, vocab, 1);
  for (int64_t window = full * batch; window < windows; ++window) {
    run(single, static_cast<uint64_t>(window), 1);
    if (progress) progress(window + 1, windows);
  }
  EvalResult result;
  result.windows = windows;
  result.tokens = windows * ctx_len;
  result.loss = loss_sum / static_cast<double>(windows);
  result.perplexity = std::exp(result.loss);
  return result;
}

}  // namespace rwkv
