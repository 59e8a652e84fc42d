#include "train/dist/mpi_communicator.h"

#define OMPI_SKIP_MPICXX 1  // the C API only
#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "core/error.h"

namespace rwkv::dist {

namespace {

// MPI counts are int: longer buffers go in pieces of at most this many elements.
constexpr size_t kMaxElementsPerCall = size_t{1} << 30;

void check(int code, const char* operation) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  RWKV_FAIL("MPI: ", operation, " failed: ", std::string(text, static_cast<size_t>(length)),
            " (a rank died or the network failed?)");
}

template <typename T>
void all_reduce_in_pieces(std::span<T> values, MPI_Datatype type) {
  for (size_t start = 0; start < values.size(); start += kMaxElementsPerCall) {
    const size_t count = std::min(kMaxElementsPerCall, values.size() - start);
    check(MPI_Allreduce(MPI_IN_PLACE, values.data() + start, static_cast<int>(count), type, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
  }
}

// MPI_Iallreduce requests, one per piece of at most kMaxElementsPerCall elements.
class MpiPendingAllReduce final : public PendingCollective {
public:
  explicit MpiPendingAllReduce(std::span<float> values) {
    for (size_t start = 0; start < values.size(); start += kMaxElementsPerCall) {
      const size_t count = std::min(kMaxElementsPerCall, values.size() - start);
      MPI_Request request = MPI_REQUEST_NULL;
      check(MPI_Iallreduce(MPI_IN_PLACE, values.data() + start, static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD, &request),
            "MPI_Iallreduce");
      requests_.push_back(request);
    }
  }
  ~MpiPendingAllReduce() override = default;  // unfinished: abandoned (see PendingCollective)
  MpiPendingAllReduce(const MpiPendingAllReduce&) = delete;
  MpiPendingAllReduce& operator=(const MpiPendingAllReduce&) = delete;

  void finish() override {
    if (requests_.empty()) return;
    const int code = MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
    check(code, "MPI_Iallreduce (wait)");
  }
  bool poll() override {
    if (requests_.empty()) return true;
    int done = 0;
    check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Iallreduce (test)");
    if (done) requests_.clear();
    return done != 0;
  }

private:
  std::vector<MPI_Request> requests_;
};

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    // Collectives are only called from the training thread.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    initialised_here_ = true;
  }
  check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &world_size_), "MPI_Comm_size");
  // Ranks that share memory share a node: their order there is the local rank.
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
  check(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank (node)");
  check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size (node)");
  MPI_Comm_free(&node);
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);
  std::string library(version, static_cast<size_t>(length));
  library = library.substr(0, library.find_first_of(",\n"));  // "Open MPI v4.1.4, package: ..." -> first part
  name_ = "MPI (" + library + ")";
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialised_here_ && !finalized) MPI_Finalize();
}

void MpiCommunicator::all_reduce_sum(std::span<float> values) { all_reduce_in_pieces(values, MPI_FLOAT); }

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_reduce_sum(std::span<float> values) {
  return std::make_unique<MpiPendingAllReduce>(values);
}

void MpiCommunicator::all_reduce_sum(std::span<double> values) { all_reduce_in_pieces(values, MPI_DOUBLE); }

void MpiCommunicator::reduce_scatter_sum(std::span<const float> all, std::span<float> mine) {
  RWKV_CHECK(all.size() == mine.size() * static_cast<size_t>(world_size_), "MPI: reduce-scatter of ", all.size(),
             " floats into chunks of ", mine.size(), " over ", world_size_, " ranks");
  RWKV_CHECK(mine.size() <= kMaxElementsPerCall, "MPI: reduce-scatter chunks above 2^30 floats are not supported");
  check(MPI_Reduce_scatter_block(all.data(), mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, MPI_SUM,
                                 MPI_COMM_WORLD),
        "MPI_Reduce_scatter_block");
}

void MpiCommunicator::all_gather(std::span<const float> mine, std::span<float> all) {
  RWKV_CHECK(all.size() == mine.size() * static_cast<size_t>(world_size_), "MPI: all-gather of chunks of ",
             mine.size(), " floats into ", all.size(), " over ", world_size_, " ranks");
  RWKV_CHECK(mine.size() <= kMaxElementsPerCall, "MPI: all-gather chunks above 2^30 floats are not supported");
  check(MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, all.data(), static_cast<int>(mine.size()),
                      MPI_FLOAT, MPI_COMM_WORLD),
        "MPI_Allgather");
}

void MpiCommunicator::broadcast(std::span<std::byte> bytes, int root) {
  for (size_t start = 0; start < bytes.size(); start += kMaxElementsPerCall) {
    const size_t count = std::min(kMaxElementsPerCall, bytes.size() - start);
    check(MPI_Bcast(bytes.data() + start, static_cast<int>(count), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

void MpiCommunicator::barrier() { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

void MpiCommunicator::abort(int status) { MPI_Abort(MPI_COMM_WORLD, status); }

}  // namespace rwkv::dist
