// Averages parameter gradients across ranks, in buckets that overlap backward (like PyTorch DDP): the
// parameters are split, in the reverse of their order (the order backward produces their gradients), into
// buckets of about `bucket_bytes`. During the backward that completes a step's gradients, a hook on each
// parameter notes its gradient is final; as soon as a bucket and every bucket before it are complete, the
// bucket's gradients are packed into its flat fp32 buffer and its all-reduce is started (MPI_Iallreduce, or
// NCCL on a side stream) while backward goes on. finish() reduces what backward never produced (as zeros),
// waits for every bucket and writes sum / world_size back into each gradient, so every rank takes the same
// step (clipping and the NaN check see the global gradient). Buckets start in index order on every rank,
// so the ranks' collectives always match. The buffers live on the GPU when the gradients do and the
// communicator takes device memory (NCCL), else on the host. Under a launcher this runs even for one rank.
#pragma once

#include <memory>
#include <vector>

#include "train/dist/communicator.h"
#include "train/optim/optimizer.h"

namespace rwkv::dist {

class GradientAverager {
public:
  // Installs the hooks on the slots' parameters (removed again by the destructor). `slots` must outlive this
  // and keep its parameters. bucket_bytes > 0; nothing is installed for a process without a launcher.
  GradientAverager(Communicator& communicator, std::vector<OptimizerSlot>& slots, size_t bucket_bytes);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Call before the backward that completes the step's gradients (the last micro-batch's with accumulation).
  void prepare_for_final_backward();
  // Call after it: every gradient then holds the mean over ranks (an undefined one counts as zeros and
  // becomes defined). Throws when a gradient arrives after its bucket was started (a parameter used twice
  // in separately differentiated parts of the graph), instead of reducing an incomplete gradient.
  void finish();
  // Both, with nothing to overlap: for gradients that are already complete.
  void average() {
    prepare_for_final_backward();
    finish();
  }

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets the last finish() found already started by backward (the rest were started by finish itself).
  int64_t buckets_started_during_backward() const { return started_during_backward_; }

private:
  struct Bucket {
    std::vector<size_t> slots;  // indices into slots_, in the order they are packed
    int64_t elements = 0;
    size_t waiting = 0;         // gradients not yet final in this step
    Tensor flat;                // the packed gradients, fp32
    std::unique_ptr<PendingCollective> reduction;
  };

  void on_gradient_final(size_t slot);
  void start_ready_buckets();
  void start(Bucket& bucket);

  Communicator& communicator_;
  std::vector<OptimizerSlot>& slots_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_slot_;
  std::vector<bool> final_;  // per slot, this step
  size_t next_to_start_ = 0;
  bool armed_ = false;
  int64_t started_during_backward_ = 0;
};

}  // namespace rwkv::dist
