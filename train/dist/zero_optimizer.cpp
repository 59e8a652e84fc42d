#include "train/dist/zero_optimizer.h"

#include <algorithm>
#include <cmath>

#include "kernels/ops.h"

namespace rwkv::dist {

namespace {

std::vector<float> range_of(const std::vector<float>& values, size_t at, size_t count) {
  return {values.begin() + static_cast<std::ptrdiff_t>(at), values.begin() + static_cast<std::ptrdiff_t>(at + count)};
}

}  // namespace

ZeroOptimizer::ZeroOptimizer(Optimizer& optimizer, Communicator& communicator, const TrainConfig& config)
    : optimizer_(optimizer), communicator_(communicator), config_(config) {
  size_t total = 0;
  for (const OptimizerSlot& slot : optimizer_.slots()) {
    RWKV_CHECK(slot.exp_avg.defined(), "zero = 1: the optimizer has no Adam moments to shard (", slot.name, ")");
    offsets_.push_back(total);
    total += static_cast<size_t>(slot.parameter.data().numel());
  }
  const size_t world = static_cast<size_t>(communicator_.world_size());
  chunk_ = (total + world - 1) / world;
  flat_.assign(chunk_ * world, 0.0f);
  shard_.assign(chunk_, 0.0f);
  const size_t shard_begin = chunk_ * static_cast<size_t>(communicator_.rank());
  const size_t shard_end = std::min(total, shard_begin + chunk_);
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    OptimizerSlot& slot = optimizer_.slots()[i];
    const size_t begin = std::max(offsets_[i], shard_begin);
    const size_t end = std::min(offsets_[i] + static_cast<size_t>(slot.parameter.data().numel()), shard_end);
    if (begin < end) {
      Piece piece;
      piece.slot = i;
      piece.begin = static_cast<int64_t>(begin - offsets_[i]);
      piece.count = static_cast<int64_t>(end - begin);
      piece.at = begin - shard_begin;
      const int64_t numel = slot.parameter.data().numel();
      piece.exp_avg = slot.exp_avg.view({numel}).slice(0, piece.begin, piece.begin + piece.count).clone();
      piece.exp_avg_sq = slot.exp_avg_sq.view({numel}).slice(0, piece.begin, piece.begin + piece.count).clone();
      pieces_.push_back(std::move(piece));
    }
  }
  release_moments();
}

Tensor ZeroOptimizer::parameter_piece(const Piece& piece) const {
  const Tensor& value = optimizer_.slots()[piece.slot].parameter.data();
  return value.view({value.numel()}).slice(0, piece.begin, piece.begin + piece.count);  // shares the storage
}

void ZeroOptimizer::flatten_gradients() {
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    const OptimizerSlot& slot = optimizer_.slots()[i];
    const auto at = flat_.begin() + static_cast<std::ptrdiff_t>(offsets_[i]);
    if (slot.parameter.grad().defined()) {
      const std::vector<float> grad = slot.parameter.grad().to_vector<float>();
      std::copy(grad.begin(), grad.end(), at);
    } else {
      std::fill_n(at, slot.parameter.data().numel(), 0.0f);  // no gradient counts as zeros
    }
  }
}

StepReport ZeroOptimizer::step(double lr) {
  StepReport report;
  flatten_gradients();
  communicator_.reduce_scatter_sum(flat_, shard_);
  const float mean = 1.0f / static_cast<float>(communicator_.world_size());
  double squares = 0;  // the padding past the last parameter is zero and adds nothing
  for (float& value : shard_) {
    value *= mean;
    squares += static_cast<double>(value) * static_cast<double>(value);
  }
  communicator_.all_reduce_sum(std::span(&squares, 1));
  report.grad_norm = std::sqrt(squares);
  if (!std::isfinite(report.grad_norm)) return report;
  const double clip_scale =
      config_.grad_clip > 0 ? std::min(1.0, config_.grad_clip / (report.grad_norm + 1e-6)) : 1.0;
  optimizer_.set_step_count(optimizer_.step_count() + 1);
  for (Piece& piece : pieces_) {
    const OptimizerSlot& slot = optimizer_.slots()[piece.slot];
    Tensor value = parameter_piece(piece);
    Tensor grad = Tensor::from_vector(range_of(shard_, piece.at, static_cast<size_t>(piece.count)), {piece.count})
                      .to(value.device());
    if (clip_scale < 1.0) grad = ops::affine(grad, clip_scale, 0.0);
    ops::adam_step_(value, grad, piece.exp_avg, piece.exp_avg_sq,
                    {lr * slot.lr_scale, config_.beta1, config_.beta2, config_.adam_eps, slot.weight_decay,
                     optimizer_.step_count()});
  }
  // Every rank gets every rank's updated chunk.
  for (const Piece& piece : pieces_) {
    const std::vector<float> values = parameter_piece(piece).to_vector<float>();
    std::copy(values.begin(), values.end(), shard_.begin() + static_cast<std::ptrdiff_t>(piece.at));
  }
  communicator_.all_gather(shard_, flat_);
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    Tensor& value = optimizer_.slots()[i].parameter.mutable_data();
    value.copy_(Tensor::from_vector(range_of(flat_, offsets_[i], static_cast<size_t>(value.numel())), value.shape()));
  }
  report.applied = true;
  return report;
}

void ZeroOptimizer::gather_into_slots(const std::vector<float>& full, bool first_moment) {
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    OptimizerSlot& slot = optimizer_.slots()[i];
    const Tensor& parameter = slot.parameter.data();
    Tensor moment = Tensor::from_vector(range_of(full, offsets_[i], static_cast<size_t>(parameter.numel())),
                                        parameter.shape())
                        .to(parameter.device());
    (first_moment ? slot.exp_avg : slot.exp_avg_sq) = std::move(moment);
  }
}

void ZeroOptimizer::gather_moments() {
  for (const bool first_moment : {true, false}) {
    std::fill(shard_.begin(), shard_.end(), 0.0f);
    for (const Piece& piece : pieces_) {
      const std::vector<float> values = (first_moment ? piece.exp_avg : piece.exp_avg_sq).to_vector<float>();
      std::copy(values.begin(), values.end(), shard_.begin() + static_cast<std::ptrdiff_t>(piece.at));
    }
    communicator_.all_gather(shard_, flat_);
    gather_into_slots(flat_, first_moment);
  }
}

void ZeroOptimizer::release_moments() {
  for (OptimizerSlot& slot : optimizer_.slots()) {
    slot.exp_avg = Tensor();
    slot.exp_avg_sq = Tensor();
  }
}

}  // namespace rwkv::dist
