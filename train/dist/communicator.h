// The collectives data-parallel training needs, behind one interface: a single process (world 1, every call a
// no-op) or MPI. Every rank must make the same calls in the same order with buffers of the same length.
// Failures (a dead peer, a bad buffer) throw rwkv::Error naming the operation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace rwkv::dist {

// A collective that was started and may still run. finish() waits for it (throwing like the blocking calls);
// its buffer must not be touched before. Destroying an unfinished one abandons it without waiting (on an error
// path, where a peer may never join): its owner must then leave the buffer allocated, since the library may
// still write into it.
class PendingCollective {
public:
  virtual ~PendingCollective() = default;
  virtual void finish() = 0;
  // Lets the library make progress without blocking (MPI progresses only inside its calls); true when done.
  virtual bool poll() { return false; }
};

class Communicator {
public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;   // rank among the processes of this node (picks the GPU)
  virtual int local_size() const = 0;   // processes on this node
  virtual std::string name() const = 0;  // for the startup table, e.g. "MPI (Open MPI v4.1.4)"
  // Whether gradients take the data-parallel path (buckets, all-reduce): true under any launcher, even for one
  // rank (`mpirun -np 1`, `--gpus 1`: the wrapper's cost can be measured); false for a plain single process.
  virtual bool is_data_parallel() const { return true; }
  // Whether buffers may be GPU memory (NCCL); the others take host memory only.
  virtual bool accepts_device_memory() const { return false; }

  // In place: every rank ends with the element-wise sum over all ranks.
  virtual void all_reduce_sum(std::span<float> values) = 0;
  // The same, started without waiting (MPI_Iallreduce; NCCL on a side stream after the work already queued on
  // the current stream): gradient buckets overlap the rest of backward. Every rank must start the same
  // collectives in the same order, and finish them all before its next blocking collective. The default runs
  // the blocking call.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(std::span<float> values);
  virtual void all_reduce_sum(std::span<double> values) = 0;
  // ZeRO-1: `all` (world_size equal chunks) is summed over ranks and this rank receives its chunk in `mine`
  // (all.size() == world_size · mine.size()).
  virtual void reduce_scatter_sum(std::span<const float> all, std::span<float> mine) = 0;
  // Every rank's `mine`, concatenated in rank order, into `all` on every rank.
  virtual void all_gather(std::span<const float> mine, std::span<float> all) = 0;
  // In place: every rank ends with root's values.
  virtual void broadcast(std::span<std::byte> bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job at once with `status` (after an error on this rank that the others cannot see,
  // so that they do not wait forever in their next collective). Returns only for a world of one.
  virtual void abort(int status) = 0;

  bool is_root() const { return rank() == 0; }
};

// The communicator of this process, chosen from the launcher's environment: MPI when started by mpirun/srun
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set), NCCL with a TCP bootstrap when started torchrun-style
// (RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT without an MPI launcher), else a single process. Created on first
// use and kept for the life of the process (MPI can be initialised only once). Throws when the environment
// asks for several ranks and this build lacks MPI (or, torchrun-style, NCCL).
Communicator& process_communicator();

// Whether this build can run ranks started without MPI (torchrun style, `rwkv train --gpus`): it needs NCCL.
bool launches_without_mpi();

}  // namespace rwkv::dist
