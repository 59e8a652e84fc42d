// `rwkv train --config F [--key value ...]`: trains an RWKV-4 model as the config says.
#include <unistd.h>

#include <climits>
#include <csignal>
#include <iostream>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "train/cli/command.h"
#include "train/config.h"
#include "train/dist/communicator.h"
#include "train/dist/launch_environment.h"
#include "train/dist/local_launcher.h"
#include "train/trainer.h"

namespace rwkv::cli {

namespace {

void request_stop(int) { stop_requested().store(true); }

// This executable, for the ranks `--gpus` starts.
std::string own_executable() {
  std::string path(PATH_MAX, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size());
  RWKV_CHECK(length > 0, "--gpus: cannot find this executable (/proc/self/exe)");
  path.resize(static_cast<size_t>(length));
  return path;
}

// The arguments without `--gpus N` / `--gpus=N`.
std::vector<std::string> without_gpus_option(const std::vector<std::string>& args) {
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--gpus") {
      ++i;
    } else if (args[i].rfind("--gpus=", 0) != 0) {
      kept.push_back(args[i]);
    }
  }
  return kept;
}

// `--gpus N`: checks what can be checked once, then starts N ranks of this command on this node.
int launch_local_ranks(const std::vector<std::string>& args, const ParsedConfig& parsed) {
  const std::string& text = parsed.extra.at("gpus");
  int gpus = 0;
  try {
    size_t used = 0;
    gpus = std::stoi(text, &used);
    RWKV_CHECK(used == text.size(), "");
  } catch (const std::exception&) {
    RWKV_FAIL("--gpus: expected a number of GPUs, got '", text, "'");
  }
  RWKV_CHECK(gpus >= 1, "--gpus: expected at least 1 GPU, got ", gpus);
  const dist::LaunchEnvironment launched = dist::detect_launch_environment();
  RWKV_CHECK(!launched.by_mpi && launched.world_size == 1, "--gpus starts its own ranks, but this process is "
             "already rank ", launched.rank, " of ", launched.world_size, " (", launched.source,
             "): use either --gpus or a launcher (mpirun, srun, torchrun variables)");
  const std::string& device = parsed.config.device;
  RWKV_CHECK(device == "auto" || device == "cuda", "--gpus runs one rank per GPU of this node (rank r on GPU r); "
             "it cannot be combined with device = ", device, " (use device = auto or cuda)");
  const int available = cuda::device_count();
  RWKV_CHECK(gpus <= available, "--gpus ", gpus, ": this machine has ", available, " usable CUDA GPU",
             available == 1 ? "" : "s", available == 0 ? " (or this rwkv was built without CUDA)" : "");
  RWKV_CHECK(dist::launches_without_mpi(), "--gpus ", gpus, ": the ranks meet through NCCL, which this rwkv was "
             "built without; rebuild with NCCL or start the ranks with mpirun");
  std::vector<std::string> argv{own_executable(), "train"};
  for (std::string& arg : without_gpus_option(args)) argv.push_back(std::move(arg));
  dist::LocalLaunch launch;
  launch.argv = argv;
  launch.ranks = gpus;
  launch.say = [](const std::string& line) { std::cerr << line << std::endl; };
  return dist::run_local_ranks(launch);
}

int run_train(const std::vector<std::string>& args) {
  const ParsedConfig parsed =
      parse_train_config(args, {{"gpus", "start N ranks on this node, one per GPU (torchrun style, NCCL)"}});
  if (parsed.help) {
    std::cout << "usage: rwkv train --config F [--key value ...]\n\n"
                 "Trains RWKV-4 from a config file; command-line values override the file's. Checkpoints go to\n"
                 "proj_dir; `--resume auto` continues from the newest valid one, exactly where it stopped.\n"
                 "SIGINT/SIGTERM finish the current step, save a checkpoint and exit 0.\n"
                 "Data-parallel: `mpirun -np N rwkv train --config F` (or srun); each rank reads micro_bsz sequences\n"
                 "of every step's global batch of micro_bsz * accumulate_grad_batches * N. GPU builds with NCCL\n"
                 "also take torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. A rank that makes\n"
                 "no progress for dist_timeout seconds (hung) ends the whole job with an error naming it.\n"
                 "`rwkv train --config F --gpus N` starts the N ranks on this node itself (N = 1 too: one NCCL\n"
                 "rank, which measures what the data-parallel path costs).\n\n"
              << parsed.help_text;
    return 0;
  }
  if (parsed.extra.count("gpus") != 0) return launch_local_ranks(args, parsed);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  // Under mpirun/srun this joins the job (MPI); otherwise a single process.
  dist::Communicator& communicator = dist::process_communicator();
  TrainerHooks hooks;
  hooks.communicator = &communicator;
  TrainOutcome outcome;
  try {
    outcome = run_training(parsed.config, hooks);
  } catch (const std::exception& e) {
    if (communicator.world_size() == 1) throw;
    // The other ranks may be waiting in a collective for this one: end the whole job instead of hanging.
    std::cerr << "rwkv train: error on rank " << communicator.rank() << " of " << communicator.world_size() << ": "
              << e.what() << "\n";
    std::cerr.flush();
    communicator.abort(1);
    return 1;
  }
  if (communicator.is_root()) {
    std::cout << (outcome.interrupted ? "stopped" : "done") << " at step " << outcome.global_step
              << (outcome.last_checkpoint.empty() ? "" : "; checkpoint " + outcome.last_checkpoint) << "\n";
  }
  return 0;
}

}  // namespace

RWKV_COMMAND("train", "train an RWKV-4 model from a config file", run_train);

}  // namespace rwkv::cli
