// Libraries opened when first needed: a clear error naming what was tried, and cuBLAS and NCCL resolved from
// their files (which a CUDA build must not link, so that CPU-only commands start fast).
#include "core/shared_library.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"
#ifdef RWKV_WITH_CUDA
#include "kernels/cuda/cublas_api.h"
#endif
#ifdef RWKV_HAVE_NCCL
#include "train/dist/nccl_api.h"
#endif

namespace rwkv {
namespace {

TEST(SharedLibrary, ResolvesFunctionsOfTheFirstNameThatLoads) {
  const SharedLibrary libm = SharedLibrary::open({"libdoes-not-exist.so.9", "libm.so.6"}, "", "a test");
  EXPECT_EQ(libm.path(), "libm.so.6");
  const auto cosine = libm.function<double (*)(double)>("cos");
  EXPECT_EQ(cosine(0.0), 1.0);
}

TEST(SharedLibrary, MissingLibrariesAndSymbolsAreClearErrors) {
  try {
    SharedLibrary::open({"libdoes-not-exist.so.9"}, "/nowhere", "the frobnicator");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("the frobnicator needs"), std::string::npos) << message;
    EXPECT_NE(message.find("libdoes-not-exist.so.9:"), std::string::npos) << message;
    EXPECT_NE(message.find("/nowhere/libdoes-not-exist.so.9:"), std::string::npos) << message;
  }
  const SharedLibrary libm = SharedLibrary::open({"libm.so.6"}, "", "a test");
  try {
    libm.symbol("no_such_function_here");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("libm.so.6 has no symbol no_such_function_here"), std::string::npos)
        << e.what();
  }
}

#ifdef RWKV_WITH_CUDA
// Needs the toolkit's libraries, not a GPU: every function resolves and the pure ones answer.
TEST(SharedLibrary, CublasResolvesWithoutAGpu) {
  const cuda_kernels::CublasApi& api = cuda_kernels::cublas_api();
  EXPECT_STREQ(api.status_name(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS");
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.set_stream, nullptr);
  EXPECT_NE(api.set_workspace, nullptr);
  EXPECT_NE(api.gemm_strided_batched_ex, nullptr);
  EXPECT_NE(api.status_string, nullptr);
}
#endif

#ifdef RWKV_HAVE_NCCL
TEST(SharedLibrary, NcclResolvesWithoutAGpu) {
  const dist::NcclApi& api = dist::nccl_api();
  int version = 0;
  ASSERT_EQ(api.get_version(&version), ncclSuccess);
  EXPECT_GE(version, 20000);
  EXPECT_NE(std::string(api.get_error_string(ncclInvalidArgument)), "");
}
#endif

#if defined(RWKV_WITH_CUDA) && defined(RWKV_BINARY_PATH)
// The binary does not load cuBLAS or NCCL at start (they cost ~0.4 s of CPU per process): not in its NEEDED list.
TEST(SharedLibrary, TheBinaryDoesNotLinkCublasOrNccl) {
  if (!std::filesystem::exists(RWKV_BINARY_PATH)) GTEST_SKIP() << "no binary at " << RWKV_BINARY_PATH;
  std::FILE* pipe = ::popen(("readelf -d '" + std::string(RWKV_BINARY_PATH) + "' 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string dynamic;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) dynamic += buffer;
  ASSERT_EQ(::pclose(pipe), 0) << dynamic;
  ASSERT_NE(dynamic.find("(NEEDED)"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libcublas"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libnccl"), std::string::npos) << dynamic;
}
#endif

}  // namespace
}  // namespace rwkv
