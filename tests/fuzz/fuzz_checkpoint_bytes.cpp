// Fuzzes the HDF5 weights and checkpoint readers with raw file bytes: the input is written to a file and opened as
// a trainer checkpoint and as a weights file. Bad files may only throw an rwkv::Error naming the file.
// Not in scripts/fuzz.sh's default set: libhdf5 1.10 itself crashes on some corrupt files (e.g. a SEGV in H5HG_read
// for a corrupt global heap, corpus/fuzz_checkpoint_bytes/libhdf5_crash_*), which no reader on top can prevent.
// fuzz_checkpoint fuzzes the same readers with well-formed HDF5 files of adversarial content instead.
#include <cstdint>
#include <string>

#include "checkpoint_readers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rwkv;
  const std::string path = fuzz::write_scratch_file("checkpoint.h5", data, size);
  fuzz::read_checkpoint_every_way(path);
  return 0;
}
