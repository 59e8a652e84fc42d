// `rwkv train --config F [--key value ...]`: trains an RWKV-4 model as the config says.
#include <csignal>
#include <iostream>

#include "train/cli/command.h"
#include "train/config.h"
#include "train/dist/communicator.h"
#include "train/trainer.h"

namespace rwkv::cli {

namespace {

void request_stop(int) { stop_requested().store(true); }

int run_train(const std::vector<std::string>& args) {
  const ParsedConfig parsed = parse_train_config(args);
  if (parsed.help) {
    std::cout << "usage: rwkv train --config F [--key value ...]\n\n"
                 "Trains RWKV-4 from a config file; command-line values override the file's. Checkpoints go to\n"
                 "proj_dir; `--resume auto` continues from the newest valid one, exactly where it stopped.\n"
                 "SIGINT/SIGTERM finish the current step, save a checkpoint and exit 0.\n"
                 "Data-parallel: `mpirun -np N rwkv train --config F` (or srun); each rank reads micro_bsz sequences\n"
                 "of every step's global batch of micro_bsz * accumulate_grad_batches * N. GPU builds with NCCL\n"
                 "also take torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. A rank that makes\n"
                 "no progress for dist_timeout seconds (hung) ends the whole job with an error naming it.\n\n"
              << parsed.help_text;
    return 0;
  }
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
