#include "train/dist/zero_optimizer.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "kernels/ops.h"

namespace rwkv::dist {

namespace {

std::span<float> values_of(Tensor& t) { return {t.data<float>(), static_cast<size_t>(t.numel())}; }

// `t` on `device`, as a tensor of its own (never a view of t's storage, which is a reused buffer).
Tensor owned_copy_on(const Tensor& t, Device device) { return t.device() == device ? t.clone() : t.to(device); }

}  // namespace

ZeroOptimizer::ZeroOptimizer(Optimizer& optimizer, Communicator& communicator, const TrainConfig& config)
    : optimizer_(optimizer), communicator_(communicator), config_(config) {
  RWKV_CHECK(!optimizer_.slots().empty(), "zero = 1: the model has no parameters to shard");
  int64_t total = 0;
  for (const OptimizerSlot& slot : optimizer_.slots()) {
    RWKV_CHECK(slot.exp_avg.defined(), "zero = 1: the optimizer has no Adam moments to shard (", slot.name, ")");
    offsets_.push_back(total);
    total += slot.parameter.data().numel();
  }
  // The buffers go where the collectives read them: NCCL takes device memory, MPI host memory.
  Device buffers = optimizer_.slots().front().parameter.data().device();
  if (buffers.is_cuda() && !communicator_.accepts_device_memory()) buffers = Device::cpu();
  const int64_t world = communicator_.world_size();
  chunk_ = static_cast<size_t>((total + world - 1) / world);
  flat_ = Tensor::zeros({static_cast<int64_t>(chunk_) * world}, DType::f32, buffers);  // the padding stays zero
  shard_ = Tensor::zeros({static_cast<int64_t>(chunk_)}, DType::f32, buffers);
  const int64_t shard_begin = static_cast<int64_t>(chunk_) * communicator_.rank();
  const int64_t shard_end = std::min(total, shard_begin + static_cast<int64_t>(chunk_));
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    OptimizerSlot& slot = optimizer_.slots()[i];
    const int64_t numel = slot.parameter.data().numel();
    const int64_t begin = std::max(offsets_[i], shard_begin);
    const int64_t end = std::min(offsets_[i] + numel, shard_end);
    if (begin < end) {
      Piece piece;
      piece.slot = i;
      piece.begin = begin - offsets_[i];
      piece.count = end - begin;
      piece.at = begin - shard_begin;
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

Tensor ZeroOptimizer::shard_piece(const Piece& piece) const {
  return shard_.slice(0, piece.at, piece.at + piece.count);
}

Tensor ZeroOptimizer::flat_slot(size_t slot) const {
  const Tensor& parameter = optimizer_.slots()[slot].parameter.data();
  return flat_.slice(0, offsets_[slot], offsets_[slot] + parameter.numel()).view(parameter.shape());
}

void ZeroOptimizer::flatten_gradients() {
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    const Tensor& grad = optimizer_.slots()[i].parameter.grad();
    Tensor part = flat_slot(i);
    if (grad.defined()) {
      part.copy_(grad);  // device to device under NCCL
    } else {
      part.zero_();  // no gradient counts as zeros
    }
  }
}

// The sum over ranks becomes the mean: in place on the host (bit for bit the gradient averager's arithmetic),
// one kernel on the device.
void ZeroOptimizer::average_shard() {
  const double mean = 1.0 / static_cast<double>(communicator_.world_size());
  if (shard_.device().is_cpu()) {
    const float factor = static_cast<float>(mean);
    for (float& value : values_of(shard_)) value *= factor;
  } else {
    shard_ = ops::affine(shard_, mean, 0.0);
  }
}

StepReport ZeroOptimizer::step(double lr) {
  StepReport report;
  flatten_gradients();
  communicator_.reduce_scatter_sum(values_of(flat_), values_of(shard_));
  average_shard();
  // Per parameter piece in slot order, as the unsharded optimizer sums per gradient (with one rank the pieces
  // are the whole gradients: the same norm to the bit); the padding is left out.
  std::vector<Tensor> pieces;
  for (const Piece& piece : pieces_) pieces.push_back(shard_piece(piece));
  double squares = ops::sum_of_squares(pieces);
  communicator_.all_reduce_sum(std::span(&squares, 1));
  report.grad_norm = std::sqrt(squares);
  if (!std::isfinite(report.grad_norm)) return report;
  const double clip_scale =
      config_.grad_clip > 0 ? std::min(1.0, config_.grad_clip / (report.grad_norm + 1e-6)) : 1.0;
  optimizer_.set_step_count(optimizer_.step_count() + 1);
  // One multi-tensor Adam over this rank's pieces, clipping folded in (the unsharded optimizer's arithmetic).
  std::vector<Tensor> values, grads;
  values.reserve(pieces_.size());
  grads.reserve(pieces_.size());
  for (const Piece& piece : pieces_) {
    values.push_back(parameter_piece(piece));
    grads.push_back(shard_piece(piece).to(values.back().device()));  // itself when already there
  }
  std::vector<ops::AdamTensor> tensors;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    Piece& piece = pieces_[i];
    const OptimizerSlot& slot = optimizer_.slots()[piece.slot];
    tensors.push_back({&values[i], &grads[i], &piece.exp_avg, &piece.exp_avg_sq, lr * slot.lr_scale,
                       slot.weight_decay});
  }
  ops::adam_step_(tensors, {config_.beta1, config_.beta2, config_.adam_eps, optimizer_.step_count()}, clip_scale);
  // Every rank gets every rank's updated chunk.
  for (size_t i = 0; i < pieces_.size(); ++i) shard_piece(pieces_[i]).copy_(values[i]);
  communicator_.all_gather(values_of(shard_), values_of(flat_));
  for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
    optimizer_.slots()[i].parameter.mutable_data().copy_(flat_slot(i));
  }
  report.applied = true;
  return report;
}

void ZeroOptimizer::gather_moments() {
  for (const bool first_moment : {true, false}) {
    shard_.zero_();
    for (const Piece& piece : pieces_) shard_piece(piece).copy_(first_moment ? piece.exp_avg : piece.exp_avg_sq);
    communicator_.all_gather(values_of(shard_), values_of(flat_));
    for (size_t i = 0; i < optimizer_.slots().size(); ++i) {
      OptimizerSlot& slot = optimizer_.slots()[i];
      (first_moment ? slot.exp_avg : slot.exp_avg_sq) = owned_copy_on(flat_slot(i), slot.parameter.data().device());
    }
  }
}

void ZeroOptimizer::release_moments() {
  for (OptimizerSlot& slot : optimizer_.slots()) {
    slot.exp_avg = Tensor();
    slot.exp_avg_sq = Tensor();
  }
}

}  // namespace rwkv::dist
