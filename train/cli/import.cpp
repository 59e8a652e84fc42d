// `rwkv import --pth X.pth --out X.h5`: a PyTorch RWKV-4 state dict (torch.save or RWKV-LM output, fp32, bf16 or
// fp16) as an HDF5 weights file for `rwkv train --load_model`, `rwkv eval` and `rwkv generate`.
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/durable_file.h"
#include "train/cli/command.h"
#include "train/io/pth_io.h"

namespace rwkv::cli {

namespace {

int run_import(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string pth_path, out_path;
  int64_t ctx_len = 1024;
  po::options_description description(
      "usage: rwkv import --pth X.pth --out X.h5 [--ctx_len N]\n\n"
      "Reads a torch.save'd RWKV-4 state dict, infers n_layer, n_embd, dim_att, dim_ffn and vocab_size from\n"
      "its tensors, checks every expected tensor, and writes the HDF5 weights (float32)");
  description.add_options()("help,h", "show this help")("pth", po::value(&pth_path)->required(),
                                                        "the .pth file to read")(
      "out", po::value(&out_path)->required(), "the HDF5 weights file to write")(
      "ctx_len", po::value(&ctx_len)->default_value(ctx_len), "training context length to record in the file");
  po::variables_map values;
  if (!parse_options(args, description, values)) return 0;
  RWKV_CHECK(ctx_len > 0, "--ctx_len must be positive, got ", ctx_len);

  const auto start = std::chrono::steady_clock::now();
  const PthModel model = read_pth_model(pth_path, ctx_len);
  // Written under a temporary name first, so a failed import never leaves a half-written X.h5.
  const std::string temp_path = temporary_path_for(out_path);
  try {
    write_model_weights(temp_path, model.dims, model.tensors);
    fsync_path(temp_path);  // the contents are on disk before the name points at them
    std::filesystem::rename(temp_path, out_path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp_path, ignored);
    throw;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double megabytes = static_cast<double>(std::filesystem::file_size(pth_path)) / 1e6;
  std::printf("wrote %s: RWKV-4 %s, %zu tensors, %lld parameters; read %.1f MB in %.2f s (%.0f MB/s)\n",
              out_path.c_str(), model.dims.describe().c_str(), model.tensors.size(),
              static_cast<long long>(model.dims.parameter_count()), megabytes, seconds,
              megabytes / std::max(seconds, 1e-9));
  return 0;
}

}  // namespace

RWKV_COMMAND("import", "convert a PyTorch .pth RWKV-4 state dict to HDF5 weights", run_import);

}  // namespace rwkv::cli
