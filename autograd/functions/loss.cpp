// Cross-entropy, the L2Wrap logit regulariser, and the head fused with both (linear_cross_entropy).
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "kernels/ops.h"

namespace rwkv::ag {

namespace {

constexpr int64_t kVocabPadding = 64;

// weight [vocab, C] rounded to bf16 into [padded_vocab, C] with zero rows after the vocabulary.
Tensor padded_bf16_copy(const Tensor& weight, int64_t padded_vocab) {
  const int64_t vocab = weight.size(0);
  if (padded_vocab == vocab) return weight.to(DType::bf16);
  Tensor padded = Tensor::zeros({padded_vocab, weight.size(1)}, DType::bf16, weight.device());
  padded.slice(0, 0, vocab).copy_(weight);
  return padded;
}

}  // namespace

Variable cross_entropy(const Variable& logits, const Tensor& targets) {
  ops::CrossEntropyOutput out = ops::cross_entropy(logits.data(), targets);
  Tensor logits_value = logits.data(), logsumexp = out.logsumexp;
  return make_output("cross_entropy", std::move(out.loss), {logits},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       const double grad_loss = g[0].to_vector<double>()[0];
                       return {ops::cross_entropy_backward(grad_loss, logits_value, targets, logsumexp)};
                     });
}

Variable l2wrap(const Variable& loss, const Variable& logits) {
  RWKV_CHECK(loss.data().numel() == 1, "l2wrap: loss must be a scalar, got ", loss.describe());
  const int64_t positions = logits.data().numel() / logits.size(-1);
  const double factor = 1e-4 / static_cast<double>(positions);
  Tensor logits_value = logits.data();
  const TensorMeta logits_meta = TensorMeta::of(logits.data());
  return make_output("l2wrap", loss.data(), {loss, logits},
                     [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
                       Tensor grad_logits = Tensor::zeros(logits_meta.shape, logits_meta.dtype, logits_meta.device);
                       ops::l2wrap_backward_(grad_logits, logits_value, factor);
                       return {g[0], grad_logits};
                     });
}

Variable linear_cross_entropy(const Variable& x, const Variable& weight, const Tensor& targets_in,
                              int64_t chunk_rows) {
  const int64_t features = weight.size(1), vocab = weight.size(0);
  RWKV_CHECK(weight.dim() == 2 && x.size(-1) == features, "linear_cross_entropy: input ", x.describe(),
             " does not end in the ", features, " features of the weight ", weight.describe());
  const int64_t rows = x.data().numel() / features;
  RWKV_CHECK(targets_in.numel() == rows && rows > 0, "linear_cross_entropy: ", rows, " positions but targets ",
             targets_in.describe());
  // Mixed precision: bf16 features read a bf16 copy of the fp32 head weight (kept for backward); the logits, the
  // softmax and the loss are fp32, the GEMMs accumulate in fp32, and dweight is computed in fp32.
  const bool mixed = x.data().dtype() == DType::bf16;
  RWKV_CHECK(!mixed || weight.data().dtype() == DType::f32, "linear_cross_entropy: bf16 features need an f32 ",
             "weight, got ", weight.describe());
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(1, (int64_t{1} << 25) / vocab);
  const Tensor flat_x = x.data().contiguous().view({rows, features});
  const Tensor targets = targets_in.contiguous().view({rows});
  // Once for the whole batch, not per chunk: on a GPU each check reads a flag on the host (25 chunks for the
  // 169M model at micro_bsz 16 would be 25 host waits per forward).
  ops::check_ids_below("linear_cross_entropy", targets, vocab, "target");
  // The bf16 copy is padded with zero rows to a multiple of 64 (50277 -> 50304): cuBLAS falls back to slow
  // kernels for a dimension that is not a multiple of 8. The padded logits are set to -inf, so the softmax, the
  // loss, the argmax of L2Wrap and the gradients are those of the real vocabulary (exp(-inf) = 0 exactly).
  const int64_t padded_vocab = mixed ? (vocab + kVocabPadding - 1) / kVocabPadding * kVocabPadding : vocab;
  const Tensor weight_value = mixed ? padded_bf16_copy(weight.data(), padded_vocab) : weight.data();
  const DType logits_dtype = weight.data().dtype();
  // Made on the device (memset + one kernel): Tensor::full would copy the value from the host and synchronise.
  const Tensor minus_infinity =
      padded_vocab == vocab ? Tensor()
                            : ops::affine(Tensor::zeros({1, 1}, logits_dtype, flat_x.device()), 1.0, -INFINITY);
  auto chunk_logits = [=](const Tensor& x_chunk) {
    Tensor logits = ops::matmul(x_chunk, weight_value, false, true, logits_dtype);
    if (padded_vocab != vocab) {  // a strided write of the padded columns only
      logits.slice(1, vocab, padded_vocab).copy_(minus_infinity.expand({logits.size(0), padded_vocab - vocab}));
    }
    return logits;
  };
  // Forward: the mean over all positions of each chunk's mean loss weighted by its size, summed on the device
  // (no host round trip per chunk).
  std::vector<Tensor> logsumexp;
  Tensor loss = Tensor::zeros({}, logits_dtype, flat_x.device());
  for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
    const int64_t end = std::min(rows, begin + chunk_rows);
    const Tensor logits = chunk_logits(flat_x.slice(0, begin, end));
    ops::CrossEntropyOutput out = ops::cross_entropy(logits, targets.slice(0, begin, end), ops::IdCheck::done);
    ops::accumulate_(loss, ops::affine(out.loss, static_cast<double>(end - begin) / static_cast<double>(rows), 0.0));
    logsumexp.push_back(std::move(out.logsumexp));
  }
  const TensorMeta x_meta = TensorMeta::of(x.data());
  const Tensor master_weight = weight.data();
  return make_output(
      "linear_cross_entropy", loss, {x, weight},
      [=](const std::vector<Tensor>& g) -> std::vector<Tensor> {
        const double grad_loss = g[0].to_vector<double>()[0];
        const double l2wrap_factor = 1e-4 / static_cast<double>(rows);  // spec §1.7, not scaled by grad_loss
        Tensor grad_x = Tensor::empty({rows, features}, flat_x.dtype(), flat_x.device());
        Tensor grad_weight = Tensor::empty({padded_vocab, features}, master_weight.dtype(), master_weight.device());
        size_t chunk = 0;
        for (int64_t begin = 0; begin < rows; begin += chunk_rows, ++chunk) {
          const int64_t end = std::min(rows, begin + chunk_rows);
          const Tensor x_chunk = flat_x.slice(0, begin, end);
          const Tensor logits = chunk_logits(x_chunk);
          // The chunk's share of the mean: grad_loss · (chunk rows / rows), spread over the chunk's rows.
          Tensor grad_logits = ops::cross_entropy_backward(
              grad_loss * static_cast<double>(end - begin) / static_cast<double>(rows), logits,
              targets.slice(0, begin, end), logsumexp[chunk]);
          ops::l2wrap_backward_(grad_logits, logits, l2wrap_factor);
          if (mixed) grad_logits = grad_logits.to(DType::bf16);
          Tensor grad_x_chunk = grad_x.slice(0, begin, end);
          ops::matmul_into(grad_logits, weight_value, false, false, grad_x_chunk, 0.0);
          ops::matmul_into(grad_logits, x_chunk, true, false, grad_weight, begin == 0 ? 0.0 : 1.0);
        }
        // The padded rows' gradients are zero and dropped (the first `vocab` rows are contiguous).
        return {grad_x.view(x_meta.shape), padded_vocab == vocab ? grad_weight : grad_weight.slice(0, 0, vocab)};
      });
}

}  // namespace rwkv::ag
