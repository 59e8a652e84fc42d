// The CUDA caching allocator's bookkeeping (core/cuda/block_pool.h) over a fake device: size policy, reuse per
// stream, splitting and merging, the out-of-memory retry and its error. Runs without a GPU.
#include <gtest/gtest.h>

#include <map>

#include "core/cuda/block_pool.h"

namespace rwkv::cuda {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Hands out addresses from a fake address space (never dereferenced) within a byte budget.
class FakeDevice final : public RawMemory {
public:
  explicit FakeDevice(size_t budget) : budget_(budget) {}
  void* allocate(size_t bytes) override {
    if (in_use_ + bytes > budget_) return nullptr;
    in_use_ += bytes;
    ++mallocs;
    void* pointer = reinterpret_cast<void*>(next_);
    next_ += bytes + (size_t{1} << 30);  // segments never touch, so a bad merge across them would show
    sizes_[pointer] = bytes;
    return pointer;
  }
  void release(void* pointer) override {
    ASSERT_TRUE(sizes_.count(pointer)) << "released a pointer that is not a segment";
    in_use_ -= sizes_[pointer];
    sizes_.erase(pointer);
    ++frees;
  }
  std::string device_name() const override { return "fake:0"; }
  std::string memory_summary() const override { return "fake device with " + format_bytes(budget_) + " budget"; }
  size_t in_use() const { return in_use_; }
  int mallocs = 0, frees = 0;

private:
  size_t budget_, in_use_ = 0;
  uintptr_t next_ = uintptr_t{1} << 40;
  std::map<void*, size_t> sizes_;
};

TEST(CoreBlockPool, SizePolicy) {
  EXPECT_EQ(rounded_request(0), 512u);
  EXPECT_EQ(rounded_request(1), 512u);
  EXPECT_EQ(rounded_request(512), 512u);
  EXPECT_EQ(rounded_request(513), 1024u);
  EXPECT_TRUE(is_small_request(kMiB));
  EXPECT_FALSE(is_small_request(kMiB + 512));
  EXPECT_EQ(segment_bytes_for(512), 2 * kMiB);
  EXPECT_EQ(segment_bytes_for(kMiB), 2 * kMiB);
  EXPECT_EQ(segment_bytes_for(kMiB + 512), 20 * kMiB);
  EXPECT_EQ(segment_bytes_for(10 * kMiB), 20 * kMiB);
  EXPECT_EQ(segment_bytes_for(10 * kMiB + 512), 12 * kMiB);
  EXPECT_EQ(segment_bytes_for(100 * kMiB + 512), 102 * kMiB);
  EXPECT_TRUE(should_split(2 * kMiB, 512, true));
  EXPECT_FALSE(should_split(1024, 1024, true));
  EXPECT_TRUE(should_split(20 * kMiB, 2 * kMiB, false));
  EXPECT_FALSE(should_split(12 * kMiB, 11 * kMiB, false));  // exactly 1 MiB left: kept whole
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(3 * kMiB / 2), "1.50 MiB");
}

TEST(CoreBlockPool, FreedBlocksAreReusedOnTheSameStreamOnly) {
  FakeDevice device(1 << 30);
  BlockPool pool(device);
  void* a = pool.allocate(1000, 0);
  pool.deallocate(a);
  EXPECT_EQ(pool.allocate(900, 0), a);  // same rounded size class, same stream: the cached block
  EXPECT_EQ(device.mallocs, 1);
  void* other_stream = pool.allocate(1000, 7);
  EXPECT_NE(other_stream, a);
  EXPECT_EQ(device.mallocs, 2);  // stream 7 never takes stream 0's memory
  const AllocatorStats stats = pool.stats();
  EXPECT_EQ(stats.allocations, 3);
  EXPECT_EQ(stats.cache_hits, 1);
  EXPECT_EQ(stats.bytes_in_use, 900 + 1000);
  EXPECT_EQ(stats.bytes_reserved, static_cast<int64_t>(4 * kMiB));
}

TEST(CoreBlockPool, SmallRequestsShareASegmentAndMergeBack) {
  FakeDevice device(1 << 30);
  BlockPool pool(device);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(pool.allocate(256 * 1024, 0));
  EXPECT_EQ(device.mallocs, 1);  // 8 x 256 KiB fit the one 2 MiB segment
  for (int i = 1; i < 8; ++i) {
    EXPECT_EQ(static_cast<char*>(blocks[static_cast<size_t>(i)]) - static_cast<char*>(blocks[0]),
              static_cast<ptrdiff_t>(i) * 256 * 1024);
  }
  // Free in an order that needs merges on both sides; the segment becomes whole and can be released.
  for (int i : {1, 3, 2, 0, 7, 5, 6, 4}) pool.deallocate(blocks[static_cast<size_t>(i)]);
  EXPECT_EQ(pool.stats().bytes_in_use, 0);
  pool.release_cached();
  EXPECT_EQ(device.frees, 1);
  EXPECT_EQ(device.in_use(), 0u);
  EXPECT_EQ(pool.stats().bytes_reserved, 0);
}

TEST(CoreBlockPool, LargeBlocksSplitAndPartlyUsedSegmentsStay) {
  FakeDevice device(1 << 30);
  BlockPool pool(device);
  void* big = pool.allocate(100 * kMiB, 0);
  pool.deallocate(big);
  void* first = pool.allocate(30 * kMiB, 0);
  void* second = pool.allocate(30 * kMiB, 0);
  EXPECT_EQ(device.mallocs, 1);  // both carved from the cached 100 MiB segment
  EXPECT_EQ(first, big);
  EXPECT_EQ(static_cast<char*>(second) - static_cast<char*>(first), static_cast<ptrdiff_t>(30 * kMiB));
  pool.release_cached();
  EXPECT_EQ(device.frees, 0);  // the segment still holds live blocks
  pool.deallocate(first);
  pool.deallocate(second);
  pool.release_cached();
  EXPECT_EQ(device.frees, 1);
  const AllocatorStats stats = pool.stats();
  EXPECT_EQ(stats.peak_bytes_in_use, static_cast<int64_t>(100 * kMiB));
  EXPECT_EQ(stats.peak_bytes_reserved, static_cast<int64_t>(100 * kMiB));
}

TEST(CoreBlockPool, ResetPeakStartsThePeaksOverFromWhatIsHeldNow) {
  FakeDevice device(1 << 30);
  BlockPool pool(device);
  void* big = pool.allocate(100 * kMiB, 0);
  pool.deallocate(big);
  void* small = pool.allocate(10 * kMiB, 0);  // carved from the cached 100 MiB segment
  pool.reset_peak();
  AllocatorStats stats = pool.stats();
  EXPECT_EQ(stats.peak_bytes_in_use, static_cast<int64_t>(10 * kMiB));
  EXPECT_EQ(stats.peak_bytes_reserved, static_cast<int64_t>(100 * kMiB));  // the segment is still held
  pool.deallocate(small);
  pool.release_cached();
  pool.reset_peak();
  stats = pool.stats();
  EXPECT_EQ(stats.peak_bytes_in_use, 0);
  EXPECT_EQ(stats.peak_bytes_reserved, 0);
  void* next = pool.allocate(20 * kMiB, 0);
  EXPECT_EQ(pool.stats().peak_bytes_in_use, static_cast<int64_t>(20 * kMiB));
  pool.deallocate(next);
}

TEST(CoreBlockPool, OutOfMemoryFreesTheCacheAndRetriesOnce) {
  FakeDevice device(64 * kMiB);
  BlockPool pool(device);
  void* cached = pool.allocate(40 * kMiB, 0);
  pool.deallocate(cached);  // 40 MiB cached on stream 0
  void* other = pool.allocate(40 * kMiB, 1);  // stream 1 cannot use it: the pool frees the cache and retries
  EXPECT_NE(other, nullptr);
  EXPECT_EQ(pool.stats().cache_flushes, 1);
  EXPECT_EQ(device.frees, 1);
}

TEST(CoreBlockPool, OutOfMemoryErrorNamesTheRequestAndTheStatistics) {
  FakeDevice device(64 * kMiB);
  BlockPool pool(device);
  void* live = pool.allocate(50 * kMiB, 0);
  try {
    pool.allocate(30 * kMiB, 0);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("out of memory on fake:0"), std::string::npos) << message;
    EXPECT_NE(message.find("30.00 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(30 * kMiB) + " bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("in use 50.00 MiB"), std::string::npos) << message;
    EXPECT_NE(message.find("peak in use"), std::string::npos) << message;
    EXPECT_NE(message.find("reserved"), std::string::npos) << message;
    EXPECT_NE(message.find("fake device"), std::string::npos) << message;
  }
  pool.deallocate(live);
  EXPECT_THROW(pool.deallocate(live), Error);  // double free is caught
}

}  // namespace
}  // namespace rwkv::cuda
