// The training loop: data, model, optimizer, schedule, checkpoints and feedback, driven by one TrainConfig.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/config/config.h"
#include "train/dist/communicator.h"
#include "train/eval/validation.h"  // ValidationRecord

namespace rwkv {

struct StepRecord {
  int64_t step = 0;  // global step after this update
  double loss = 0;
  double grad_norm = 0;
  double lr = 0;
  double ms = 0;
  double tokens_per_second = 0;
  bool skipped = false;  // non-finite loss or gradients: no update
  // Memory high-water marks so far (no per-step reset exists): the process's peak resident set, and the peak
  // of the training device's allocator (tensor bytes on the CPU; reserved bytes of the CUDA caching allocator).
  int64_t rss_peak_bytes = 0;
  int64_t allocator_peak_bytes = 0;
  // Data-parallel: time spent after backward waiting for the gradient all-reduces, i.e. the communication that
  // backward did not hide (0 without a launcher).
  double reduce_wait_ms = 0;
};

struct TrainOutcome {
  int64_t global_step = 0;
  std::string last_checkpoint;
  std::vector<StepRecord> records;  // the steps this run took
  std::vector<ValidationRecord> validations;  // the evaluations of val_data_file this run made
  bool interrupted = false;         // stopped by SIGINT/SIGTERM (after saving)
};

struct TrainerHooks {
  std::function<void(const StepRecord&)> on_step;  // after every step
  bool quiet = false;                              // no console output (tests)
  dist::Communicator* communicator = nullptr;      // the ranks to train with; null = dist::process_communicator()
  // On every rank before it computes a step (this rank, the step about to be taken), inside the step's hang
  // watchdog: a test can stall a rank here as a deadlocked rank or a stuck GPU would.
  std::function<void(int rank, int64_t step)> before_step{};
};

// Runs training as the config says (resume, load_model, schedule, checkpoints). Throws rwkv::Error on bad
// input or when training cannot continue (after leaving the last good checkpoint untouched).
// Data-parallel with a communicator of several ranks: each rank reads its share of every step's global batch
// (micro_bsz sequences), gradients are averaged across ranks before clipping, so every rank takes the same
// step; only rank 0 prints, writes metrics and saves checkpoints. Every rank must call this with the same config.
TrainOutcome run_training(const TrainConfig& config, const TrainerHooks& hooks = {});

// Set by SIGINT/SIGTERM handlers that `rwkv train` installs: the loop finishes its step, saves and returns.
std::atomic<bool>& stop_requested();

}  // namespace rwkv
