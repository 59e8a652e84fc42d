#include "train/dist/nccl_api.h"

#include <type_traits>

#include "core/shared_library.h"

namespace rwkv::dist {

const NcclApi& nccl_api() {
  static const NcclApi api = [] {
    // Only the soname this binary was built for: an unversioned name could load another major version.
    const SharedLibrary library =
        SharedLibrary::open({"libnccl.so.2"}, RWKV_NCCL_LIBRARY_DIR, "GPU collectives between ranks (NCCL)");
    NcclApi resolved{};
    static_assert(std::is_same_v<decltype(resolved.all_reduce), decltype(&::ncclAllReduce)>);
    resolved.get_version = library.function<decltype(resolved.get_version)>("ncclGetVersion");
    resolved.get_unique_id = library.function<decltype(resolved.get_unique_id)>("ncclGetUniqueId");
    resolved.comm_init_rank_config =
        library.function<decltype(resolved.comm_init_rank_config)>("ncclCommInitRankConfig");
    resolved.comm_finalize = library.function<decltype(resolved.comm_finalize)>("ncclCommFinalize");
    resolved.comm_destroy = library.function<decltype(resolved.comm_destroy)>("ncclCommDestroy");
    resolved.comm_abort = library.function<decltype(resolved.comm_abort)>("ncclCommAbort");
    resolved.comm_get_async_error = library.function<decltype(resolved.comm_get_async_error)>("ncclCommGetAsyncError");
    resolved.get_error_string = library.function<decltype(resolved.get_error_string)>("ncclGetErrorString");
    resolved.get_last_error = library.function<decltype(resolved.get_last_error)>("ncclGetLastError");
    resolved.all_reduce = library.function<decltype(resolved.all_reduce)>("ncclAllReduce");
    resolved.reduce_scatter = library.function<decltype(resolved.reduce_scatter)>("ncclReduceScatter");
    resolved.all_gather = library.function<decltype(resolved.all_gather)>("ncclAllGather");
    resolved.broadcast = library.function<decltype(resolved.broadcast)>("ncclBroadcast");
    return resolved;
  }();
  return api;
}

}  // namespace rwkv::dist
