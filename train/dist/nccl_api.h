// The NCCL functions the communicator uses, resolved from libnccl when the first NCCL communicator is made
// (see core/shared_library.h for why it is not linked).
#pragma once

#include <nccl.h>

namespace rwkv::dist {

struct NcclApi {
  decltype(&::ncclGetVersion) get_version;
  decltype(&::ncclGetUniqueId) get_unique_id;
  decltype(&::ncclCommInitRankConfig) comm_init_rank_config;
  decltype(&::ncclCommFinalize) comm_finalize;
  decltype(&::ncclCommDestroy) comm_destroy;
  decltype(&::ncclCommAbort) comm_abort;
  decltype(&::ncclCommGetAsyncError) comm_get_async_error;
  decltype(&::ncclGetErrorString) get_error_string;
  decltype(&::ncclGetLastError) get_last_error;
  decltype(&::ncclAllReduce) all_reduce;
  decltype(&::ncclReduceScatter) reduce_scatter;
  decltype(&::ncclAllGather) all_gather;
  decltype(&::ncclBroadcast) broadcast;
};

// Loads libnccl (once, thread-safe) and resolves every function above; throws rwkv::Error when it cannot.
const NcclApi& nccl_api();

}  // namespace rwkv::dist
