// ZeRO-1 (zero = 1): Adam with its moments sharded across data-parallel ranks. The parameters, flattened in
// slot order and padded to world_size equal chunks, are split so that rank r owns chunk r. A step
// reduce-scatters the gradients (each rank receives the sum of its chunk), averages them, takes the global
// gradient norm from the ranks' partial sums of squares, clips, updates its chunk with the same multi-tensor Adam
// as the unsharded optimizer, and all-gathers the updated parameters. The flat buffers live where the
// collectives can read them: on the parameters' GPU under NCCL (no host round trip; the only host read is the
// norm), in host memory under MPI. Checkpoints hold full moments: gather_moments() puts them back into the
// Optimizer's slots for a save (and for nothing else), release_moments() frees them.
#pragma once

#include <vector>

#include "train/config/config.h"
#include "train/dist/communicator.h"
#include "train/optim/optimizer.h"

namespace rwkv::dist {

class ZeroOptimizer {
public:
  // `optimizer` holds the full moments (fresh zeros or loaded from a checkpoint); this rank keeps its shard and
  // the full ones are freed. Learning-rate multipliers, weight decay and the step count stay in `optimizer`.
  ZeroOptimizer(Optimizer& optimizer, Communicator& communicator, const TrainConfig& config);

  // Same contract as Optimizer::step (global norm before clipping; non-finite gradients skip the update).
  StepReport step(double lr);
  // Collective: every rank ends with the full moments in optimizer.slots() (for a checkpoint).
  void gather_moments();
  void release_moments();
  // Floats of Adam moments this rank keeps (both moments).
  size_t moment_floats() const { return 2 * chunk_; }
  // Where the flat gradient and parameter buffers live (the collectives' memory).
  Device buffer_device() const { return flat_.device(); }

private:
  // The part of one parameter that falls into this rank's chunk: elements [begin, begin + count) of the
  // flattened parameter, at `at` within the chunk.
  struct Piece {
    size_t slot = 0;
    int64_t begin = 0;
    int64_t count = 0;
    int64_t at = 0;
    Tensor exp_avg, exp_avg_sq;  // on the parameter's device
  };
  Tensor parameter_piece(const Piece& piece) const;  // a view: writes go to the parameter
  Tensor shard_piece(const Piece& piece) const;      // a view of shard_
  Tensor flat_slot(size_t slot) const;               // a view of flat_ in the slot's parameter shape
  void flatten_gradients();
  void average_shard();

  Optimizer& optimizer_;
  Communicator& communicator_;
  TrainConfig config_;
  std::vector<int64_t> offsets_;  // start of each slot in the flat layout
  size_t chunk_ = 0;              // floats per rank (the flat size rounded up to world_size chunks)
  std::vector<Piece> pieces_;
  Tensor flat_, shard_;  // reused f32 buffers: the whole padded vector and this rank's chunk
};

}  // namespace rwkv::dist
