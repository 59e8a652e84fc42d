#include "train/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "core/allocator.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "train/dist/nccl_api.h"
#include "train/dist/tcp_bootstrap.h"

namespace rwkv::dist {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kStagingAlignment = 256;  // host buffers are staged at aligned offsets of the scratch buffer

void check_cuda(cudaError_t code, const char* what) {
  RWKV_CHECK(code == cudaSuccess, "NCCL communicator: ", what, ": ", cudaGetErrorString(code));
}

// The GPU of memory a kernel can address directly (device or managed), or -1 for host memory (staged).
int memory_device(const void* pointer) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    cudaGetLastError();  // plain host memory may report an error on old drivers: clear it
    return -1;
  }
  const bool on_device = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  return on_device ? attributes.device : -1;
}

size_t aligned(size_t bytes) { return (bytes + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment; }

std::string version_text() {
  int version = 0;
  nccl_api().get_version(&version);  // major * 10000 + minor * 100 + patch since NCCL 2.9
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100);
}

// A collective's input and output as device addresses: device memory as it is, host memory copied through the
// scratch buffer (input before the collective, output after it has completed).
struct Staged {
  const void* input;
  void* output;
  bool output_on_host;
};

}  // namespace

struct NcclCommunicator::State {
  int device = 0;
  std::optional<std::chrono::seconds> timeout;  // none: wait forever
  Place place;
  ncclComm_t comm = nullptr;
  // Set once, by whichever thread aborts first (a timed-out collective, or the hang watchdog through abort()):
  // ncclCommAbort frees the communicator, so after it nothing may touch `comm` again, not even ncclCommDestroy.
  std::atomic<bool> aborted{false};
  void* scratch = nullptr;
  size_t scratch_bytes = 0;

  std::optional<Clock::time_point> deadline() const {
    if (!timeout) return std::nullopt;
    return Clock::now() + *timeout;
  }

  [[noreturn]] void fail_stalled(const char* what) {
    abort_communicator();
    RWKV_FAIL("NCCL: ", what, " on rank ", place.rank, " of ", place.world_size, " did not complete within ",
              timeout->count(), " s (a peer hung or died?); the communicator was aborted");
  }

  // In non-blocking mode a call may return before NCCL has finished issuing it: wait until it says done.
  void wait_until_issued(const char* what, std::optional<Clock::time_point> until) {
    for (;;) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = nccl_api().comm_get_async_error(comm, &state);
      if (query != ncclSuccess) state = query;
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        const std::string detail = nccl_api().get_last_error(comm);
        abort_communicator();
        RWKV_FAIL("NCCL: ", what, " failed on rank ", place.rank, " of ", place.world_size, ": ",
                  nccl_api().get_error_string(state), detail.empty() ? "" : " (" + detail + ")");
      }
      if (until && Clock::now() > *until) fail_stalled(what);
      std::this_thread::yield();
    }
  }

  // Enqueues one collective on `stream` and waits until NCCL has issued it (not until it has run).
  template <typename Enqueue>
  void issue(const char* what, cudaStream_t stream, std::optional<Clock::time_point> until, Enqueue enqueue) {
    RWKV_CHECK(!aborted, "NCCL: ", what, " after the communicator was aborted");
    const ncclResult_t issued = enqueue(stream);
    if (issued != ncclSuccess && issued != ncclInProgress) {
      RWKV_FAIL("NCCL: ", what, " on rank ", place.rank, " of ", place.world_size, ": ",
                nccl_api().get_error_string(issued),
                " (", nccl_api().get_last_error(comm), ")");
    }
    wait_until_issued(what, until);
  }

  // Polls `is_done` (a stream or event query) rather than synchronising: a collective whose peer never arrives
  // must end in an error, not a hang.
  template <typename Query>
  void wait_until_done(const char* what, std::optional<Clock::time_point> until, Query is_done) {
    cuda::count_host_wait();
    for (;;) {
      const cudaError_t status = is_done();
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady) check_cuda(status, what);
      ncclResult_t async = ncclSuccess;
      nccl_api().comm_get_async_error(comm, &async);
      if (async != ncclSuccess && async != ncclInProgress) wait_until_issued(what, until);  // throws with details
      if (until && Clock::now() > *until) fail_stalled(what);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // Issues one collective on the device's current stream and waits until the stream has run it.
  template <typename Enqueue>
  void run(const char* what, cudaStream_t stream, Enqueue enqueue) {
    const auto until = deadline();
    issue(what, stream, until, enqueue);
    wait_until_done(what, until, [stream] { return cudaStreamQuery(stream); });
  }

  // The stream gradient buckets are reduced on, next to the compute stream (created on first use).
  cudaStream_t side_stream() {
    if (bucket_stream == nullptr) {
      check_cuda(cudaStreamCreateWithFlags(&bucket_stream, cudaStreamNonBlocking), "cudaStreamCreate (buckets)");
    }
    return bucket_stream;
  }
  cudaStream_t bucket_stream = nullptr;

  // A bucket's all-reduce on the side stream; `done` is recorded after it.
  class PendingAllReduce final : public PendingCollective {
  public:
    PendingAllReduce(State& state, cudaEvent_t done) : state_(state), done_(done) {}
    ~PendingAllReduce() override { cudaEventDestroy(done_); }  // unfinished: abandoned (see PendingCollective)
    PendingAllReduce(const PendingAllReduce&) = delete;
    PendingAllReduce& operator=(const PendingAllReduce&) = delete;

    void finish() override {
      if (finished_) return;
      finished_ = true;
      if (state_.aborted) return;
      state_.wait_until_done("all-reduce (gradient bucket)", state_.deadline(),
                             [this] { return cudaEventQuery(done_); });
    }
    bool poll() override { return finished_ || cudaEventQuery(done_) == cudaSuccess; }

  private:
    State& state_;
    cudaEvent_t done_;
    bool finished_ = false;
  };

  // From the caching allocator (counted in its statistics, no cudaMalloc once its cache is warm). Every
  // collective has completed before the next one starts, so growing the buffer frees nothing in use.
  void* scratch_of(size_t bytes) {
    if (bytes > scratch_bytes) {
      Allocator& allocator = allocator_for(Device::cuda(device));
      if (scratch != nullptr) allocator.deallocate(scratch, scratch_bytes);
      scratch = nullptr;
      scratch_bytes = 0;
      scratch = allocator.allocate(bytes);
      scratch_bytes = bytes;
    }
    return scratch;
  }

  // Whether a buffer is this communicator's GPU memory (false: host memory, staged). Memory of another GPU is an
  // error NCCL would report only as "invalid argument".
  bool on_this_device(const void* pointer) const {
    const int owner = memory_device(pointer);
    RWKV_CHECK(owner < 0 || owner == device, "NCCL: a buffer on cuda:", owner,
               " was given to the communicator of cuda:", device);
    return owner >= 0;
  }

  // Device addresses for a collective's buffers; host input is copied in on `stream` (ordered before it).
  Staged stage(const void* input, size_t input_bytes, void* output, size_t output_bytes, cudaStream_t stream) {
    const bool in_place = input == output;
    const bool input_on_host = !on_this_device(input);
    const bool output_on_host = !on_this_device(output);
    const size_t input_room = input_on_host ? aligned(input_bytes) : 0;
    const size_t output_room = output_on_host && !in_place ? aligned(output_bytes) : 0;
    std::byte* room = nullptr;
    if (input_room + output_room > 0) room = static_cast<std::byte*>(scratch_of(input_room + output_room));
    Staged staged{input, output, output_on_host};
    if (input_on_host) {
      check_cuda(cudaMemcpyAsync(room, input, input_bytes, cudaMemcpyHostToDevice, stream),
                 "cudaMemcpyAsync (stage the input)");
      staged.input = room;
    }
    if (output_on_host) staged.output = in_place ? room : room + input_room;
    return staged;
  }

  void abort_communicator() {
    if (!aborted.exchange(true) && comm != nullptr) nccl_api().comm_abort(comm);
  }
};

namespace {

// Copies a staged output back to host memory (the collective has completed).
void unstage(const Staged& staged, void* output, size_t output_bytes, cudaStream_t stream) {
  if (!staged.output_on_host) return;
  check_cuda(cudaMemcpyAsync(output, staged.output, output_bytes, cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync (unstage the output)");
  cuda::count_host_wait();
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (unstage the output)");
}

cudaStream_t current_stream(int device) {
  cuda::set_device(device);
  return static_cast<cudaStream_t>(cuda::current_stream(device));
}

}  // namespace

NcclCommunicator::NcclCommunicator(const Place& place, int device, std::chrono::seconds timeout,
                                   const ShareUniqueId& share, Communicator* launcher)
    : place_(place), launcher_(launcher), state_(std::make_unique<State>()) {
  RWKV_CHECK(place.world_size >= 1 && place.rank >= 0 && place.rank < place.world_size, "NCCL: rank ", place.rank,
             " of ", place.world_size, " is not a valid place");
  state_->device = device;
  state_->place = place;
  if (timeout.count() > 0) state_->timeout = timeout;
  cuda::set_device(device);
  ncclUniqueId id{};
  if (place.rank == 0) {
    const ncclResult_t made = nccl_api().get_unique_id(&id);
    RWKV_CHECK(made == ncclSuccess, "NCCL: ncclGetUniqueId failed: ", nccl_api().get_error_string(made));
  }
  share(std::as_writable_bytes(std::span(&id, 1)));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // calls return at once; wait_until_issued polls them with the timeout
  const ncclResult_t started =
      nccl_api().comm_init_rank_config(&state_->comm, place.world_size, id, place.rank, &config);
  RWKV_CHECK(started == ncclSuccess || started == ncclInProgress, "NCCL: ncclCommInitRankConfig on rank ",
             place.rank, " of ", place.world_size, " failed: ", nccl_api().get_error_string(started));
  state_->wait_until_issued("communicator setup (ncclCommInitRankConfig)", state_->deadline());
  name_ = "NCCL " + version_text();
}

NcclCommunicator::~NcclCommunicator() {
  if (state_->comm != nullptr) {
    if (!state_->aborted) {
      // Flush outstanding work, but never hang at exit on a dead peer: abort when it does not finish in time.
      nccl_api().comm_finalize(state_->comm);
      try {
        state_->wait_until_issued("communicator shutdown (ncclCommFinalize)", state_->deadline());
      } catch (const Error&) {
        // wait_until_issued aborted the communicator; nothing more to do while shutting down
      }
    }
    if (!state_->aborted) nccl_api().comm_destroy(state_->comm);  // an abort has freed it already
  }
  if (state_->scratch != nullptr) {
    allocator_for(Device::cuda(state_->device)).deallocate(state_->scratch, state_->scratch_bytes);
  }
  if (state_->bucket_stream != nullptr) cudaStreamDestroy(state_->bucket_stream);
}

void NcclCommunicator::all_reduce_sum(std::span<float> values) {
  if (values.empty()) return;
  const cudaStream_t stream = current_stream(state_->device);
  const size_t bytes = values.size_bytes();
  const Staged staged = state_->stage(values.data(), bytes, values.data(), bytes, stream);
  state_->run("all-reduce", stream, [&](cudaStream_t s) {
    return nccl_api().all_reduce(staged.input, staged.output, values.size(), ncclFloat, ncclSum, state_->comm, s);
  });
  unstage(staged, values.data(), bytes, stream);
}

std::unique_ptr<PendingCollective> NcclCommunicator::start_all_reduce_sum(std::span<float> values) {
  if (values.empty() || !state_->on_this_device(values.data())) return Communicator::start_all_reduce_sum(values);
  const cudaStream_t compute = current_stream(state_->device);
  const cudaStream_t side = state_->side_stream();
  // The side stream waits for what the compute stream has queued so far (the kernels that filled `values`).
  cudaEvent_t produced = nullptr;
  cudaEvent_t done = nullptr;
  check_cuda(cudaEventCreateWithFlags(&produced, cudaEventDisableTiming), "cudaEventCreate");
  check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  auto pending = std::make_unique<State::PendingAllReduce>(*state_, done);
  check_cuda(cudaEventRecord(produced, compute), "cudaEventRecord (bucket filled)");
  check_cuda(cudaStreamWaitEvent(side, produced, 0), "cudaStreamWaitEvent (bucket filled)");
  cudaEventDestroy(produced);  // released once it has fired
  state_->issue("all-reduce (gradient bucket)", side, state_->deadline(), [&](cudaStream_t s) {
    return nccl_api().all_reduce(values.data(), values.data(), values.size(), ncclFloat, ncclSum, state_->comm, s);
  });
  check_cuda(cudaEventRecord(done, side), "cudaEventRecord (bucket reduced)");
  return pending;
}

void NcclCommunicator::all_reduce_sum(std::span<double> values) {
  if (values.empty()) return;
  const cudaStream_t stream = current_stream(state_->device);
  const size_t bytes = values.size_bytes();
  const Staged staged = state_->stage(values.data(), bytes, values.data(), bytes, stream);
  state_->run("all-reduce", stream, [&](cudaStream_t s) {
    return nccl_api().all_reduce(staged.input, staged.output, values.size(), ncclDouble, ncclSum, state_->comm, s);
  });
  unstage(staged, values.data(), bytes, stream);
}

void NcclCommunicator::reduce_scatter_sum(std::span<const float> all, std::span<float> mine) {
  RWKV_CHECK(all.size() == mine.size() * static_cast<size_t>(place_.world_size), "NCCL: reduce-scatter of ",
             all.size(), " floats into chunks of ", mine.size(), " over ", place_.world_size, " ranks");
  if (mine.empty()) return;
  const cudaStream_t stream = current_stream(state_->device);
  const Staged staged = state_->stage(all.data(), all.size_bytes(), mine.data(), mine.size_bytes(), stream);
  state_->run("reduce-scatter", stream, [&](cudaStream_t s) {
    return nccl_api().reduce_scatter(staged.input, staged.output, mine.size(), ncclFloat, ncclSum, state_->comm, s);
  });
  unstage(staged, mine.data(), mine.size_bytes(), stream);
}

void NcclCommunicator::all_gather(std::span<const float> mine, std::span<float> all) {
  RWKV_CHECK(all.size() == mine.size() * static_cast<size_t>(place_.world_size), "NCCL: all-gather of chunks of ",
             mine.size(), " floats into ", all.size(), " over ", place_.world_size, " ranks");
  if (mine.empty()) return;
  const cudaStream_t stream = current_stream(state_->device);
  const Staged staged = state_->stage(mine.data(), mine.size_bytes(), all.data(), all.size_bytes(), stream);
  state_->run("all-gather", stream, [&](cudaStream_t s) {
    return nccl_api().all_gather(staged.input, staged.output, mine.size(), ncclFloat, state_->comm, s);
  });
  unstage(staged, all.data(), all.size_bytes(), stream);
}

void NcclCommunicator::broadcast(std::span<std::byte> bytes, int root) {
  RWKV_CHECK(root >= 0 && root < place_.world_size, "NCCL: broadcast from rank ", root, " of ", place_.world_size);
  if (bytes.empty()) return;
  const cudaStream_t stream = current_stream(state_->device);
  const Staged staged = state_->stage(bytes.data(), bytes.size(), bytes.data(), bytes.size(), stream);
  state_->run("broadcast", stream, [&](cudaStream_t s) {
    return nccl_api().broadcast(staged.input, staged.output, bytes.size(), ncclUint8, root, state_->comm, s);
  });
  unstage(staged, bytes.data(), bytes.size(), stream);
}

void NcclCommunicator::barrier() {
  float token = 0;  // NCCL has no barrier: a one-element all-reduce waits for every rank
  all_reduce_sum(std::span(&token, 1));
}

void NcclCommunicator::abort(int status) {
  // With several ranks the process ends right here, and abort() may come from the hang watchdog's thread while
  // the training thread is polling `comm`: ncclCommAbort would free it under that thread (a crash hiding the
  // clear error), so the communicator is left to the process's end. Alone, nothing else is waiting on it.
  if (place_.world_size == 1) {
    state_->abort_communicator();
    return;
  }
  if (launcher_ != nullptr) launcher_->abort(status);  // MPI_Abort ends every rank of the job
  std::_Exit(status);  // launched without MPI: the other ranks stop at their own timeout
}

std::unique_ptr<NcclCommunicator> make_nccl_over_launcher(Communicator& launcher, int device,
                                                          std::chrono::seconds timeout) {
  const NcclCommunicator::Place place{launcher.rank(), launcher.world_size(), launcher.local_rank(),
                                      launcher.local_size()};
  auto share = [&launcher](std::span<std::byte> unique_id) { launcher.broadcast(unique_id, 0); };
  return std::make_unique<NcclCommunicator>(place, device, timeout, share, &launcher);
}

std::unique_ptr<NcclCommunicator> make_nccl_over_tcp(const NcclCommunicator::Place& place,
                                                     const std::string& master_host, int master_port, int device,
                                                     std::chrono::seconds timeout) {
  const std::chrono::milliseconds wait = timeout.count() > 0 ? timeout : std::chrono::seconds(600);
  auto share = [&](std::span<std::byte> unique_id) {
    if (place.world_size == 1) return;
    if (place.rank == 0) {
      BootstrapServer server(master_host, master_port);
      server.send_to_peers(unique_id, place.world_size, wait);
      return;
    }
    const std::vector<std::byte> received = receive_from_root(master_host, master_port, place.rank, wait);
    RWKV_CHECK(received.size() == unique_id.size(), "TCP bootstrap: rank 0 at ", master_host, ":", master_port,
               " sent ", received.size(), " bytes instead of an NCCL unique id of ", unique_id.size());
    std::memcpy(unique_id.data(), received.data(), received.size());
  };
  return std::make_unique<NcclCommunicator>(place, device, timeout, share, nullptr);
}

}  // namespace rwkv::dist
