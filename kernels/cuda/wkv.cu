// WKV entry points: argument checks and the choice of kernel version (v1 unless asked otherwise, until v2 has
// been verified against v1 on a GPU; see tests/kernels/cuda_ops_test.cpp).
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/wkv_internal.cuh"

namespace rwkv::cuda_kernels {

namespace {

WkvVersion version_from_environment() {
  const char* value = std::getenv("RWKV_WKV_KERNEL");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "v1") == 0) return WkvVersion::v1_serial;
  if (std::strcmp(value, "v2") == 0) return WkvVersion::v2_chunked;
  RWKV_FAIL("RWKV_WKV_KERNEL=", value, " is not a WKV kernel version (v1 or v2)");
}

void check_sizes(int64_t batch, int64_t time, int64_t channels, const char* what) {
  RWKV_CHECK(batch >= 1 && time >= 1 && channels >= 1, what, ": empty input (B=", batch, ", T=", time, ", C=",
             channels, ")");
}

}  // namespace

WkvVersion resolve_wkv_version(WkvVersion requested) {
  if (requested != WkvVersion::automatic) return requested;
  static const WkvVersion from_environment = version_from_environment();
  return from_environment;
}

const char* wkv_version_name(WkvVersion version) {
  switch (resolve_wkv_version(version)) {
    case WkvVersion::v1_serial: return "v1";
    case WkvVersion::v2_chunked: return "v2";
    case WkvVersion::automatic: break;
  }
  return "?";
}

void wkv_forward(const WkvForwardArgs& args, WkvVersion version) {
  check_sizes(args.batch, args.time, args.channels, "cuda wkv forward");
  if (resolve_wkv_version(version) == WkvVersion::v2_chunked) {
    wkv_detail::forward_v2(args);
  } else {
    wkv_detail::forward_v1(args);
  }
}

void wkv_backward(const WkvBackwardArgs& args, WkvVersion version) {
  check_sizes(args.batch, args.time, args.channels, "cuda wkv backward");
  RWKV_CHECK(args.grad_state_in == nullptr || args.state_in != nullptr,
             "cuda wkv backward: a state gradient was requested without a state");
  if (resolve_wkv_version(version) == WkvVersion::v2_chunked) {
    wkv_detail::backward_v2(args);
  } else {
    wkv_detail::backward_v1(args);
  }
}

}  // namespace rwkv::cuda_kernels
