// `rwkv export --model X.h5 --out X.pth [--dtype bf16|fp16|fp32]`: the weights as the file torch.save(state_dict)
// writes, for ChatRWKV, the `rwkv` pip package, rwkv.cpp's and HuggingFace's converters.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>

#include "train/cli/command.h"
#include "train/io/pth_io.h"

namespace rwkv::cli {

namespace {

int run_export(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string model_path, out_path, dtype_name = "bf16";
  bool force_zip64 = false;
  po::options_description description(
      "usage: rwkv export --model X.h5 --out X.pth [--dtype bf16|fp16|fp32]\n\n"
      "Writes the /model weights of an HDF5 weights file or trainer checkpoint as a PyTorch state dict\n"
      "(torch.save's zip format; official names, shapes and order). bf16 and fp16 round to nearest even.\n"
      "The file appears under its name only once complete");
  description.add_options()("help,h", "show this help")("model", po::value(&model_path)->required(),
                                                        "HDF5 weights or checkpoint")(
      "out", po::value(&out_path)->required(), "the .pth file to write")(
      "dtype", po::value(&dtype_name)->default_value(dtype_name), "bf16 (as the released RWKV-4 files), fp16 or fp32")(
      "force_zip64", po::bool_switch(&force_zip64), "write ZIP64 records even for a small file (to test readers)");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;

  const PthDType dtype = parse_pth_dtype(dtype_name);
  pth::ZipWriterOptions zip_options;
  if (force_zip64) zip_options.zip64_threshold = 0;
  const auto start = std::chrono::steady_clock::now();
  const PthExportResult result = export_pth(model_path, out_path, dtype, zip_options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: RWKV-4 %s, %zu tensors in %s, %.1f MB in %.2f s (%.0f MB/s)\n", out_path.c_str(),
              result.dims.describe().c_str(), result.tensors, pth_dtype_name(dtype),
              static_cast<double>(result.file_bytes) / 1e6, seconds,
              static_cast<double>(result.file_bytes) / 1e6 / std::max(seconds, 1e-9));
  return 0;
}

}  // namespace

RWKV_COMMAND("export", "write a model's weights as a PyTorch .pth state dict", run_export);

}  // namespace rwkv::cli
