// `rwkv train --config F [--key value ...]`: trains an RWKV-4 model as the config says.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <iostream>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "train/cli/command.h"
#include "train/config/config.h"
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

// `--gpus N`, or RWKV-LM's `--devices N` with a GPU accelerator: checks what can be checked once, then starts N
// ranks of this command on this node. `option` names the flag in messages.
int launch_local_ranks(const std::vector<std::string>& args, const ParsedConfig& parsed, const std::string& option,
                       const std::string& text) {
  int gpus = 0;
  try {
    size_t used = 0;
    gpus = std::stoi(text, &used);
    RWKV_CHECK(used == text.size(), "");
  } catch (const std::exception&) {
    RWKV_FAIL(option, ": expected a number of GPUs, got '", text, "'");
  }
  RWKV_CHECK(gpus >= 1, option, ": expected at least 1 GPU, got ", gpus);
  const dist::LaunchEnvironment launched = dist::detect_launch_environment();
  RWKV_CHECK(!launched.by_mpi && launched.world_size == 1, option, " starts its own ranks, but this process is "
             "already rank ", launched.rank, " of ", launched.world_size, " (", launched.source,
             "): use either ", option, " or a launcher (mpirun, srun, torchrun variables)");
  const std::string& device = parsed.config.device;
  RWKV_CHECK(device == "auto" || device == "cuda", option, " runs one rank per GPU of this node (rank r on GPU r); "
             "it cannot be combined with device = ", device, " (use device = auto or cuda)");
  const int available = cuda::device_count();
  RWKV_CHECK(gpus <= available, option, " ", gpus, ": this machine has ", available, " usable CUDA GPU",
             available == 1 ? "" : "s", available == 0 ? " (or this rwkv was built without CUDA)" : "");
  RWKV_CHECK(dist::launches_without_mpi(), option, " ", gpus, ": the ranks meet through NCCL, which this rwkv was "
             "built without; rebuild with NCCL or start the ranks with mpirun");
  std::vector<std::string> argv{own_executable(), "train"};
  for (std::string& arg : without_gpus_option(args)) argv.push_back(std::move(arg));
  dist::LocalLaunch launch;
  launch.argv = argv;
  launch.ranks = gpus;
  launch.say = [](const std::string& line) { std::cerr << line << std::endl; };
  return dist::run_local_ranks(launch);
}

// RWKV-LM's --devices N / --num_nodes M pick the ranks as Lightning would: under a launcher they must match its
// world size; without one, devices > 1 on a GPU accelerator starts the ranks here (like --gpus N), several
// nodes need a launcher, and a CPU run is one process. Returns the number of local ranks to start (0: none).
int64_t ranks_to_start(const ParsedConfig& parsed) {
  const int64_t devices = parsed.devices(), nodes = parsed.num_nodes();
  if (devices == 0 && nodes == 0) return 0;
  const dist::LaunchEnvironment launched = dist::detect_launch_environment();
  const int64_t wanted = std::max<int64_t>(devices, 1) * std::max<int64_t>(nodes, 1);
  if (launched.by_mpi || launched.world_size > 1) {
    RWKV_CHECK(wanted == launched.world_size, "devices ", std::max<int64_t>(devices, 1), " x num_nodes ",
               std::max<int64_t>(nodes, 1), " = ", wanted, " ranks, but the launcher started ", launched.world_size,
               " (", launched.source, ")");
    return 0;
  }
  RWKV_CHECK(nodes <= 1, "num_nodes ", nodes, ": start the ", wanted, " ranks with a launcher on every node "
             "(mpirun, srun or torchrun variables); `rwkv train` alone starts ranks on this node only");
  if (devices <= 1 || parsed.config.device == "cpu") return 0;
  return devices;
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
                 "rank, which measures what the data-parallel path costs).\n"
                 "RWKV-LM command lines work unchanged: `rwkv train --load_model \"\" --proj_dir out ... --devices 1\n"
                 "--precision bf16 --strategy deepspeed_stage_2` (the flag list is at the end).\n\n"
              << parsed.help_text;
    return 0;
  }
  if (parsed.extra.count("gpus") != 0) return launch_local_ranks(args, parsed, "--gpus", parsed.extra.at("gpus"));
  if (const int64_t ranks = ranks_to_start(parsed); ranks > 0) {
    return launch_local_ranks(args, parsed, "--devices", std::to_string(ranks));
  }
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  // A console that went away (the launcher killed, a closed pipe) must not kill a training run at its next
  // line of output: the run goes on and its log is metrics.jsonl.
  std::signal(SIGPIPE, SIG_IGN);
  // Under mpirun/srun this joins the job (MPI); otherwise a single process.
  dist::Communicator& communicator = dist::process_communicator();
  if (communicator.is_root()) {
    for (const std::string& note : parsed.notes) std::cout << note << "\n";
    if (parsed.devices() > 1 && parsed.config.device == "cpu" && communicator.world_size() == 1) {
      std::cout << "note: devices " << parsed.devices() << " with accelerator cpu: one process (CPU data-parallel "
                << "runs start under mpirun -np N)\n";
    }
  }
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
