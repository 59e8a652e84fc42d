// PyTorch .pth interop: export the /model group of an HDF5 weights file or checkpoint as the file
// torch.save(state_dict) writes (what ChatRWKV, the `rwkv` pip package, rwkv.cpp's and HuggingFace's converters
// load), and import such a file (torch.save or RWKV-LM output, fp32/bf16/fp16) into an HDF5 weights file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/shape.h"
#include "train/model/model_config.h"
#include "train/io/pth_zip.h"
#include "train/io/weights_io.h"

namespace rwkv {

// The element type of the exported tensors.
enum class PthDType { f32, bf16, f16 };
PthDType parse_pth_dtype(const std::string& name);  // "fp32"/"f32"/"float32", "bf16"/"bfloat16", "fp16"/"f16"/"float16"
const char* pth_dtype_name(PthDType dtype);         // "fp32", "bf16", "fp16"

// IEEE half precision, round to nearest even (overflow to infinity, subnormals kept, NaN stays NaN).
uint16_t float_to_half(float value);
float half_to_float(uint16_t bits);

struct PthExportResult {
  ModelConfig dims;
  size_t tensors = 0;
  uint64_t file_bytes = 0;
};

// Writes /model of `h5_path` (weights file or checkpoint) to `pth_path` atomically, one tensor at a time.
// The rounding to bf16/fp16 is to nearest even, like torch's Tensor.to().
PthExportResult export_pth(const std::string& h5_path, const std::string& pth_path, PthDType dtype,
                           const pth::ZipWriterOptions& zip_options = {});

// Every tensor of a torch.save'd dict as float32 CPU tensors, in the file's order. Supports float, bfloat16,
// half and double storages, any strides within the storage; everything else is a clear error naming the file.
NamedTensors read_pth_tensors(const std::string& pth_path);

struct PthModel {
  ModelConfig dims;  // inferred from the tensors; ctx_len as given
  NamedTensors tensors;  // float32, in official order
};

// Reads a .pth state dict of an RWKV-4 model, infers its dimensions and checks that exactly the expected
// tensors are present with their shapes (all problems are listed).
PthModel read_pth_model(const std::string& pth_path, int64_t ctx_len);

}  // namespace rwkv
