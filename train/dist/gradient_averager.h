// Averages parameter gradients across ranks after backward: every gradient is packed into one flat fp32
// buffer, summed by one all-reduce and divided by the world size, so every rank then holds the same gradients
// and takes the same optimizer step (clipping and the NaN check see the global gradient). The buffer lives on
// the GPU when the gradients do and the communicator takes device memory (NCCL), else on the host.
#pragma once

#include <vector>

#include "train/dist/communicator.h"
#include "train/optimizer.h"

namespace rwkv::dist {

class GradientAverager {
public:
  explicit GradientAverager(Communicator& communicator) : communicator_(communicator) {}

  // Replaces each slot's gradient by the mean over ranks (an undefined gradient counts as zeros and becomes
  // defined). Nothing happens for a world of one.
  void average(std::vector<OptimizerSlot>& slots);

private:
  void average_on_device(std::vector<OptimizerSlot>& slots);

  Communicator& communicator_;
  std::vector<float> flat_;  // reused between steps
  Tensor device_flat_;       // the same on the GPU
};

}  // namespace rwkv::dist
