#include "train/dist/gradient_averager.h"

#include <mutex>
#include <span>
#include <utility>

#include "core/error.h"
#include "kernels/ops.h"

namespace rwkv::dist {

GradientAverager::GradientAverager(Communicator& communicator, std::vector<OptimizerSlot>& slots,
                                   size_t bucket_bytes)
    : communicator_(communicator), slots_(slots) {
  RWKV_CHECK(bucket_bytes > 0, "gradient buckets must hold at least one byte");
  if (!communicator_.is_data_parallel()) return;
  bucket_of_slot_.resize(slots_.size());
  final_.assign(slots_.size(), false);
  for (size_t i = slots_.size(); i-- > 0;) {
    const int64_t elements = slots_[i].parameter.data().numel();
    const bool full = !buckets_.empty() && buckets_.back().elements > 0 &&
                      static_cast<size_t>(buckets_.back().elements + elements) * sizeof(float) > bucket_bytes;
    if (buckets_.empty() || full) buckets_.emplace_back();
    buckets_.back().slots.push_back(i);
    buckets_.back().elements += elements;
    bucket_of_slot_[i] = buckets_.size() - 1;
    slots_[i].parameter.set_grad_accumulated_hook([this, i] { on_gradient_final(i); });
  }
}

GradientAverager::~GradientAverager() {
  if (!communicator_.is_data_parallel()) return;
  for (OptimizerSlot& slot : slots_) {
    if (slot.parameter.defined()) slot.parameter.set_grad_accumulated_hook({});
  }
  for (Bucket& bucket : buckets_) {
    if (!bucket.reduction) continue;
    // Abandoned on an error path: the library may still write into the buffer, so it stays allocated, held
    // here for the life of the process (reachable, so leak checkers see the leak is deliberate).
    static std::mutex lock;
    static auto* abandoned = new std::vector<std::pair<std::unique_ptr<PendingCollective>, Tensor>>();
    const std::lock_guard guard(lock);
    abandoned->emplace_back(std::move(bucket.reduction), std::move(bucket.flat));
  }
}

void GradientAverager::prepare_for_final_backward() {
  if (!communicator_.is_data_parallel()) return;
  final_.assign(slots_.size(), false);
  for (Bucket& bucket : buckets_) {
    RWKV_CHECK(!bucket.reduction, "gradient averaging: a bucket of the previous step was never finished");
    bucket.waiting = bucket.slots.size();
  }
  next_to_start_ = 0;
  started_during_backward_ = 0;
  armed_ = true;
}

void GradientAverager::on_gradient_final(size_t slot) {
  if (!armed_) return;  // an earlier micro-batch of the step: its gradients are not final
  const size_t index = bucket_of_slot_[slot];
  if (final_[slot]) {
    RWKV_CHECK(index >= next_to_start_, "gradient averaging: the gradient of ", slots_[slot].name,
               " grew after its bucket's all-reduce had started (is the parameter used in two separately "
               "differentiated parts of the graph?)");
    return;
  }
  final_[slot] = true;
  --buckets_[index].waiting;
  start_ready_buckets();
  for (size_t i = 0; i < next_to_start_; ++i) buckets_[i].reduction->poll();  // MPI progresses only when called
}

void GradientAverager::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) {
    start(buckets_[next_to_start_]);
    ++next_to_start_;
  }
}

void GradientAverager::start(Bucket& bucket) {
  Device device = slots_[bucket.slots.front()].parameter.data().device();
  if (device.is_cuda() && !communicator_.accepts_device_memory()) device = Device::cpu();
  if (!bucket.flat.defined() || bucket.flat.device() != device) {
    bucket.flat = Tensor::zeros({bucket.elements}, DType::f32, device);
  }
  int64_t at = 0;
  for (const size_t slot : bucket.slots) {
    const Tensor& parameter = slots_[slot].parameter.data();
    Tensor part = bucket.flat.slice(0, at, at + parameter.numel()).view(parameter.shape());
    const Tensor& grad = slots_[slot].parameter.grad();
    if (grad.defined()) {
      part.copy_(grad);
    } else {
      part.zero_();  // never produced on this rank: contributes zeros
    }
    at += parameter.numel();
  }
  bucket.reduction =
      communicator_.start_all_reduce_sum(std::span<float>(bucket.flat.data<float>(), static_cast<size_t>(at)));
}

void GradientAverager::finish() {
  if (!communicator_.is_data_parallel()) return;
  RWKV_CHECK(armed_, "gradient averaging: finish() without prepare_for_final_backward()");
  armed_ = false;
  started_during_backward_ = static_cast<int64_t>(next_to_start_);
  for (; next_to_start_ < buckets_.size(); ++next_to_start_) start(buckets_[next_to_start_]);
  const double scale = 1.0 / static_cast<double>(communicator_.world_size());
  for (Bucket& bucket : buckets_) {
    bucket.reduction->finish();
    bucket.reduction.reset();
    Tensor mean;
    if (bucket.flat.device().is_cpu()) {
      float* values = bucket.flat.data<float>();
      const float factor = static_cast<float>(scale);
      for (int64_t i = 0; i < bucket.elements; ++i) values[i] *= factor;
      mean = bucket.flat;
    } else {
      mean = ops::affine(bucket.flat, scale, 0.0);
    }
    int64_t at = 0;
    for (const size_t slot : bucket.slots) {
      const Tensor& parameter = slots_[slot].parameter.data();
      Tensor& grad = slots_[slot].parameter.mutable_grad();
      if (!grad.defined()) grad = Tensor::zeros(parameter.shape(), DType::f32, parameter.device());
      grad.copy_(mean.slice(0, at, at + parameter.numel()).view(parameter.shape()));  // to the gradient's device
      at += parameter.numel();
    }
  }
}

}  // namespace rwkv::dist
