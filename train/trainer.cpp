#include "train/trainer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>

#include "autograd/functions.h"
#include "core/allocator.h"
#include "core/durable_file.h"
#include "data/batch_builder.h"
#include "data/dataset.h"
#include "core/cuda_runtime.h"
#include "kernels/ops.h"
#include "train/gpu_peaks.h"
#include "train/io/checkpoint.h"
#include "train/dist/gradient_averager.h"
#ifdef RWKV_HAVE_NCCL
#include "train/dist/nccl_communicator.h"
#endif
#include "train/dist/progress_watchdog.h"
#include "train/dist/watched_communicator.h"
#include "train/dist/zero_optimizer.h"
#include "train/model/model_init.h"
#include "train/io/model_io.h"
#include "train/run_log.h"
#include "train/optim/schedule.h"
#include "train/eval/validation.h"

namespace rwkv {

namespace fs = std::filesystem;

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

constexpr uint64_t kScanLimitTokens = uint64_t{1} << 28;  // scan every id up front for data up to 256M tokens

struct Console {
  bool quiet;
  bool terminal;  // progress bar and line redraws
  [[gnu::format(printf, 2, 3)]] void line(const char* format, ...) const {
    if (quiet) return;
    if (terminal) std::printf("\r\033[K");  // a line replaces the progress bar, if one is showing
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::printf("\n");
    std::fflush(stdout);
  }
};

std::string human_count(double value) {
  char text[32];
  if (value >= 1e9) {
    std::snprintf(text, sizeof(text), "%.2fB", value / 1e9);
  } else if (value >= 1e6) {
    std::snprintf(text, sizeof(text), "%.2fM", value / 1e6);
  } else if (value >= 1e3) {
    std::snprintf(text, sizeof(text), "%.1fK", value / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.0f", value);
  }
  return text;
}

// Which checkpoint this run starts from: "" for none.
std::string resolve_resume(const TrainConfig& config, const Console& console) {
  if (config.resume.empty()) return "";
  if (config.resume != "auto") {
    read_train_state(config.resume);  // a clear error when it is missing or not a complete checkpoint
    return config.resume;
  }
  std::vector<std::string> problems;
  const std::vector<CheckpointEntry> entries = list_checkpoints(config.proj_dir, &problems);
  for (const std::string& problem : problems) console.line("warning: skipping unusable checkpoint: %s", problem.c_str());
  return entries.empty() ? "" : entries.front().path;
}

// Rank 0's string on every rank (e.g. the checkpoint it chose, so that all ranks resume from the same file).
std::string broadcast_string(dist::Communicator& communicator, std::string text) {
  uint64_t length = text.size();
  communicator.broadcast(std::as_writable_bytes(std::span(&length, 1)), 0);
  text.resize(length);
  communicator.broadcast(std::as_writable_bytes(std::span(text.data(), text.size())), 0);
  return text;
}

// The device of this rank: with several ranks and no explicit index, the node-local rank's GPU.
Device rank_device(const std::string& name, const dist::Communicator& communicator) {
  // A torchrun-style launch made this rank's NCCL communicator on the GPU of LOCAL_RANK before the config was
  // read: an explicit cuda:K elsewhere would put the model on one GPU and its collectives on another.
  if (name.starts_with("cuda:") && communicator.accepts_device_memory() && communicator.world_size() > 1) {
    const std::string own = "cuda:" + std::to_string(communicator.local_rank());
    RWKV_CHECK(name == own, "config: device = ", name, ", but rank ", communicator.rank(), " of ",
               communicator.world_size(), " was launched with LOCAL_RANK ", communicator.local_rank(),
               " and its NCCL communicator is on ", own, "; set device = cuda (each rank takes its LOCAL_RANK's GPU)");
  }
  const Device device = parse_device(name);
  if (!device.is_cuda() || name.starts_with("cuda:") || communicator.world_size() == 1) return device;
  return parse_device("cuda:" + std::to_string(communicator.local_rank()));
}

void warn_config_changes(const std::string& saved_ini, const TrainConfig& now, const std::string& path,
                         const Console& console) {
  std::istringstream saved(saved_ini), current(now.to_ini());
  std::string a, b;
  while (std::getline(saved, a) && std::getline(current, b)) {
    if (a != b) console.line("note: %s was saved with '%s'; this run uses '%s'", path.c_str(), a.c_str(), b.c_str());
  }
}


// One run of `rwkv train`, phase by phase: run() reads top to bottom as what training does. The phases keep the
// order of every side effect (console lines, files in proj_dir, collectives on every rank): multi-rank runs
// deadlock if ranks disagree on the order of collectives, and tests/cli/crash_torture.sh kills a run at each
// system call of its start-up and saves.
class TrainingRun {
public:
  TrainingRun(const TrainConfig& config, const TrainerHooks& hooks)
      : hooks_(hooks),
        launched_(hooks.communicator ? *hooks.communicator : dist::process_communicator()),
        config_(config) {}

  TrainOutcome run();

private:
  struct StepResult {
    StepRecord record;
    bool stop = false;  // some rank was asked to stop (a signal or a vanished launcher)
  };

  // Start-up phases, in the order run() calls them.
  void set_up_collectives();
  void prepare_proj_dir();
  void open_data();
  void build_model_and_optimizer();
  void choose_starting_point();
  void set_up_gradient_exchange();
  void look_up_peak_flops();
  void print_startup_table();
  std::string parallel_description() const;
  TrainOutcome nothing_to_do();
  void open_run_log();
  // The step loop and what each step does.
  TrainOutcome train_until_stop();
  StepResult take_step();
  double forward_backward();
  double wait_for_gradients();
  void count_skipped_update(const StepRecord& record);
  void measure_step(StepRecord& record, std::chrono::steady_clock::time_point step_start) const;
  void publish(const StepRecord& record);
  void show_progress(const StepRecord& record) const;
  void validate_if_due();
  void save_if_due();
  TrainOutcome save_and_stop();
  void save(const std::string& name);
  bool launcher_gone();

  dist::Communicator& communicator() const { return *communicator_; }

  // Declared in the order the objects come to exist, so that they go away in reverse (the gradient exchange
  // before the model, the communicators last).
  const TrainerHooks& hooks_;
  dist::Communicator& launched_;  // the launcher's communicator (or the test's)
  TrainConfig config_;
  Device device_;
  std::unique_ptr<dist::Communicator> gpu_collectives_;  // NCCL between GPU ranks
  std::optional<dist::ProgressWatchdog> watchdog_;
  std::optional<dist::WatchedCommunicator> watched_;
  dist::Communicator* communicator_ = nullptr;  // what training talks through: watched_, NCCL or launched_
  int64_t world_ = 1;
  Console console_{true, false};
  // Data.
  std::optional<data::TokenSource> source_;
  std::optional<ValidationSet> validation_;
  ScheduleShape shape_;
  int64_t end_step_ = 0;   // where the schedule ends
  int64_t stop_step_ = 0;  // where this run ends (max_steps)
  int64_t tokens_per_step_ = 0;
  std::unique_ptr<data::Sampler> sampler_;
  std::optional<data::BatchBuilder> batches_;
  // Model, optimizer and the state they continue from.
  std::optional<Rwkv4> model_;
  std::string resume_from_;  // "" for none
  TrainState state_;
  std::string origin_;  // where the weights came from, for the startup table and run.json
  std::optional<Optimizer> optimizer_;
  std::optional<dist::ZeroOptimizer> zero_;            // zero = 1: this rank keeps its shard of the moments
  std::optional<dist::GradientAverager> gradients_;   // zero = 0: all-reduce in buckets, overlapped with backward
  std::optional<double> peak_tflops_;
  double non_embedding_parameters_ = 0;
  // The step loop.
  TrainOutcome outcome_;
  std::optional<RunLog> log_;  // metrics and the loss curve: rank 0's
  pid_t launcher_ = 0;         // the parent of a data-parallel rank; 0 when not watched
  bool launcher_reported_ = false;
  // One micro-batch's inputs then targets, in one buffer so that a GPU gets both in one upload (one host wait).
  std::vector<int32_t> batch_tokens_;
  int64_t bad_in_a_row_ = 0;
  std::chrono::steady_clock::time_point run_start_;
  int64_t first_step_ = 0;
};

TrainOutcome TrainingRun::run() {
  config_.validate();
  set_up_collectives();
  RWKV_CHECK(!config_.data_file.empty(), "config: data_file is required");
  ops::set_allow_tf32(config_.precision == "tf32");  // fp32 keeps full-precision GEMMs (spec §4.7)
  prepare_proj_dir();
  open_data();
  build_model_and_optimizer();
  look_up_peak_flops();
  print_startup_table();
  outcome_.global_step = state_.global_step;
  if (state_.global_step >= stop_step_) return nothing_to_do();
  open_run_log();
  return train_until_stop();
}

// The device of this rank and the communicators between ranks.
void TrainingRun::set_up_collectives() {
  device_ = rank_device(config_.device, launched_);
  // GPU ranks exchange through NCCL (device buffers, no host round trip); the launcher's communicator still
  // carries the NCCL unique id and ends the job on an error.
#ifdef RWKV_HAVE_NCCL
  if (device_.is_cuda() && launched_.is_data_parallel() && !launched_.accepts_device_memory()) {
    gpu_collectives_ =
        dist::make_nccl_over_launcher(launched_, device_.index, std::chrono::seconds(config_.dist_timeout));
  }
#endif
  dist::Communicator& collectives = gpu_collectives_ ? *gpu_collectives_ : launched_;
  // With several ranks, a step's compute or a collective that outlasts dist_timeout ends the job (a hung rank).
  if (launched_.world_size() > 1 && config_.dist_timeout > 0) {
    auto report_hang = [&launched = launched_](const std::string& activity, int64_t step, double seconds) {
      std::fprintf(stderr, "rwkv train: rank %d of %d: no progress for %.0f s in %s (step %lld); aborting\n",
                   launched.rank(), launched.world_size(), seconds, activity.c_str(), static_cast<long long>(step));
      std::fflush(stderr);
      launched.abort(1);
      std::_Exit(1);  // abort returns only for a world of one, which is never watched
    };
    watchdog_.emplace(std::chrono::seconds(config_.dist_timeout), report_hang);
    watched_.emplace(collectives, *watchdog_);
  }
  communicator_ = watched_ ? static_cast<dist::Communicator*>(&*watched_) : &collectives;
  world_ = communicator().world_size();
  // Rank 0 speaks for the job. mpirun hands its ranks a pseudo-terminal even when the job's output goes to a
  // file, so several ranks never draw a progress bar.
  console_ = Console{hooks_.quiet || !communicator().is_root(), ::isatty(STDOUT_FILENO) != 0 && world_ == 1};
}

// proj_dir exists and is writable, and holds no temporaries of a killed run.
void TrainingRun::prepare_proj_dir() {
  std::error_code error;
  fs::create_directories(config_.proj_dir, error);
  RWKV_CHECK(!error && fs::is_directory(config_.proj_dir), "config: cannot create proj_dir '", config_.proj_dir,
             "': ", error.message());
  if (!communicator().is_root()) return;  // only rank 0 writes there
  const std::string probe = config_.proj_dir + "/.write-test";
  std::ofstream test(probe);
  RWKV_CHECK(test.good(), "config: proj_dir '", config_.proj_dir, "' is not writable");
  test.close();
  fs::remove(probe, error);
  // Temporaries that a killed run left behind (a checkpoint, a rewrite of the metrics log, loss.svg, ...).
  remove_stale_temporaries(config_.proj_dir, [](std::string_view name) {
    return name.starts_with("rwkv-") || name == "metrics.jsonl" || name == "loss.svg" || name == "run.json" ||
           name == "vocab.json";
  });
}

// The training data (checked against the vocabulary), the validation set, the schedule and the sample order.
void TrainingRun::open_data() {
  const data::TokenSource& source =
      source_.emplace(data::open_dataset({config_.data_file, config_.data_type, config_.proj_dir}));
  if (config_.vocab_size == 0) {
    RWKV_CHECK(source.vocab_size().has_value(), "config: vocab_size is required for ", source.kind(),
               " data (the tokenizer's vocabulary size, e.g. 50277 for the GPT-NeoX 20B tokenizer)");
    config_.vocab_size = static_cast<int64_t>(*source.vocab_size());
  } else if (source.vocab_size()) {
    RWKV_CHECK(static_cast<uint64_t>(config_.vocab_size) >= *source.vocab_size(), "config: vocab_size ",
               config_.vocab_size, " is smaller than the ", *source.vocab_size(), " symbols of ", config_.data_file);
  }
  if (source.size() <= kScanLimitTokens) source.check_vocab(static_cast<uint64_t>(config_.vocab_size));
  // Held-out data is checked here too: bad validation data is an error before training starts.
  if (!config_.val_data_file.empty()) {
    validation_.emplace(config_, config_.vocab_size, communicator().rank(), static_cast<int>(world_));
  }
  shape_ = schedule_shape(config_, world_);
  end_step_ = schedule_end_step(config_, shape_);
  stop_step_ = config_.max_steps > 0 ? std::min(end_step_, config_.max_steps) : end_step_;
  tokens_per_step_ = config_.ctx_len * shape_.real_bsz;
  try {
    sampler_ = data::make_training_sampler(
        {static_cast<uint64_t>(config_.ctx_len), config_.magic_prime, static_cast<uint64_t>(config_.my_pile_shift),
         static_cast<uint64_t>(config_.epoch_begin), config_.seed, static_cast<uint64_t>(config_.my_random_steps)},
        source.size());
  } catch (const Error& e) {  // data shorter than ctx_len, a magic_prime that does not fit: name the data
    RWKV_FAIL("config: ", e.what(), " (data_file ", config_.data_file, ")");
  }
  batches_.emplace(source, *sampler_, static_cast<uint64_t>(config_.vocab_size),
                   static_cast<uint64_t>(config_.micro_bsz), static_cast<uint64_t>(communicator().rank()),
                   static_cast<uint64_t>(world_));
}

// The model with its starting weights, the optimizer with its moments, and how gradients cross ranks.
void TrainingRun::build_model_and_optimizer() {
  model_.emplace(config_.model());
  model_->set_gradient_checkpointing(config_.grad_cp == 1);
  model_->set_activation_dtype(config_.precision == "bf16" ? DType::bf16 : DType::f32);
  choose_starting_point();
  model_->to(device_);
  optimizer_.emplace(model_->named_parameters(), config_);  // moments live next to the parameters
  if (!resume_from_.empty()) {
    load_checkpoint(resume_from_, *model_, *optimizer_);
    warn_config_changes(state_.config_ini, config_, resume_from_, console_);
  }
  set_up_gradient_exchange();
  state_.world_size = world_;
  state_.rng_seed = config_.seed;
  state_.sampler = sampler_->describe();
  state_.config_ini = config_.to_ini();
}

// A checkpoint to resume (rank 0 chooses, every rank follows), else load_model's weights, else a fresh init.
void TrainingRun::choose_starting_point() {
  resume_from_ = broadcast_string(communicator(),
                                  communicator().is_root() ? resolve_resume(config_, console_) : std::string());
  if (resume_from_.empty()) {
    if (!config_.load_model.empty()) {
      load_weights_into(*model_, config_.load_model);
      origin_ = "weights from " + config_.load_model + " (fresh optimizer, warmup)";
    } else {
      initialize_rwkv4(*model_, config_.lr_init, config_.seed);
      origin_ = "fresh init (seed " + std::to_string(config_.seed) + ")";
    }
    return;
  }
  state_ = read_train_state(resume_from_);
  // The sample order is a pure function of the global step and the global batch: a different world size
  // continues exactly when micro_bsz · accumulate_grad_batches · world size is unchanged.
  const TrainConfig saved = config_from_ini(state_.config_ini, resume_from_);
  const int64_t saved_batch = saved.micro_bsz * saved.accumulate_grad_batches * state_.world_size;
  if (saved_batch != shape_.real_bsz) {
    console_.line("warning: %s was saved with a global batch of %lld sequences (%lld ranks x micro_bsz %lld x "
                  "accumulate %lld); this run uses %lld, so the sample order and schedule do not continue exactly",
                  resume_from_.c_str(), static_cast<long long>(saved_batch), static_cast<long long>(state_.world_size),
                  static_cast<long long>(saved.micro_bsz), static_cast<long long>(saved.accumulate_grad_batches),
                  static_cast<long long>(shape_.real_bsz));
  }
  origin_ = "resumed from " + resume_from_;
}

void TrainingRun::set_up_gradient_exchange() {
  if (config_.zero == 1) {
    zero_.emplace(*optimizer_, communicator(), config_);
  } else {
    gradients_.emplace(communicator(), optimizer_->slots(),
                       static_cast<size_t>(std::max(1.0, config_.grad_bucket_mb * double(1 << 20))));
  }
}

// MFU on a GPU whose peak is known (6 · non-embedding parameters · tokens/s over the bf16 peak).
void TrainingRun::look_up_peak_flops() {
  if (device_.is_cuda()) peak_tflops_ = bf16_peak_tflops(cuda::device_name(device_.index));
  const ModelConfig& model = model_->config();
  non_embedding_parameters_ = static_cast<double>(model.parameter_count() - model.vocab_size * model.n_embd);
}

void TrainingRun::print_startup_table() {
  const ModelConfig& model = model_->config();
  console_.line("rwkv train: %s", origin_.c_str());
  const char* precision_note = config_.precision != "bf16" ? ""
                               : device_.is_cuda() ? " (bf16 activations and GEMMs, fp32 master weights)"
                                                   : " (emulated on the CPU: fp32 arithmetic, slower than fp32)";
  console_.line("  device      %s, precision %s%s", device_.str().c_str(), config_.precision.c_str(), precision_note);
  console_.line("  model       RWKV-4 %s, %s parameters (%.1f MiB fp32 + %.1f MiB Adam moments)",
                model.describe().c_str(), human_count(static_cast<double>(model.parameter_count())).c_str(),
                model.parameter_count() * 4.0 / (1 << 20), model.parameter_count() * 8.0 / (1 << 20));
  console_.line("  data        %s: %s tokens (%s), %s", config_.data_file.c_str(),
                human_count(static_cast<double>(source_->size())).c_str(), source_->kind().c_str(),
                sampler_->describe().c_str());
  if (validation_) {
    const std::string when = config_.val_every > 0 ? "every " + std::to_string(config_.val_every) + " steps and " : "";
    console_.line("  validation  %s; %sat the end", validation_->describe().c_str(), when.c_str());
  }
  const std::string ranks_factor = world_ == 1 ? "" : " x " + std::to_string(world_) + " ranks";
  console_.line("  batch       micro_bsz %lld x accumulate %lld%s = %lld sequences, %s tokens per step",
                static_cast<long long>(config_.micro_bsz), static_cast<long long>(config_.accumulate_grad_batches),
                ranks_factor.c_str(), static_cast<long long>(shape_.real_bsz),
                human_count(static_cast<double>(tokens_per_step_)).c_str());
  console_.line("  schedule    %lld steps per mini-epoch, %lld mini-epochs, ends at step %lld (%s); this run: steps "
                "%lld..%lld",
                static_cast<long long>(shape_.epoch_steps), static_cast<long long>(shape_.epoch_count),
                static_cast<long long>(end_step_), schedule_end_reason(config_, shape_).c_str(),
                static_cast<long long>(state_.global_step), static_cast<long long>(stop_step_));
  console_.line("  parallel    %s", parallel_description().c_str());
  console_.line("  proj_dir    %s", config_.proj_dir.c_str());
  if (!console_.quiet) std::printf("resolved configuration:\n%s\n", config_.to_ini().c_str());
}

// The startup table's "parallel" row: ranks, communicator, how gradients and moments are shared, hang timeout.
std::string TrainingRun::parallel_description() const {
  char parallel_note[128] = "";
  if (zero_) {
    std::snprintf(parallel_note, sizeof(parallel_note),
                  ", ZeRO-1 (%.2f MiB of Adam moments per rank, exchanged in %s memory)",
                  static_cast<double>(zero_->moment_floats()) * 4.0 / (1 << 20),
                  zero_->buffer_device().is_cuda() ? "GPU" : "host");
  }
  if (communicator().is_data_parallel() && gradients_) {
    std::snprintf(parallel_note, sizeof(parallel_note),
                  ", gradients in %lld bucket%s of <= %g MiB overlapping backward",
                  static_cast<long long>(gradients_->bucket_count()), gradients_->bucket_count() == 1 ? "" : "s",
                  config_.grad_bucket_mb);
  }
  const std::string timeout_note =
      watchdog_ ? ", hang timeout " + std::to_string(config_.dist_timeout) + " s" : std::string();
  return std::to_string(world_) + (world_ == 1 ? " rank" : " ranks") + " (" +
         std::to_string(communicator().local_size()) + " per node), communicator " + communicator().name() +
         parallel_note + timeout_note;
}

TrainOutcome TrainingRun::nothing_to_do() {
  console_.line("nothing to do: the run is already at step %lld", static_cast<long long>(state_.global_step));
  outcome_.last_checkpoint = resume_from_;
  return std::move(outcome_);
}

// Rank 0's metrics log (continued from the starting step) and run.json.
void TrainingRun::open_run_log() {
  if (!communicator().is_root()) return;
  log_.emplace(config_.proj_dir, state_.global_step);
  write_run_info(config_.proj_dir, {config_.to_ini(), origin_, device_.str(),
                                    device_.is_cuda() ? cuda::device_name(device_.index) : std::string(), world_,
                                    state_.global_step});
}

// Steps until stop_step, validating and saving as the config says; the last save is rwkv-final.h5 where the
// schedule ends. A stop request (SIGINT/SIGTERM on any rank, or a vanished launcher) saves and returns early.
TrainOutcome TrainingRun::train_until_stop() {
  // A rank whose launcher was killed (SIGKILL to mpirun cannot be passed on) would otherwise train on as an
  // orphan and write into proj_dir beside the job that replaces it: it stops at the next step, saving like
  // SIGTERM. A plain process is left alone when its shell goes (nohup runs).
  launcher_ = communicator().is_data_parallel() ? ::getppid() : 0;
  batch_tokens_.resize(static_cast<size_t>(2 * config_.micro_bsz * config_.ctx_len));
  run_start_ = std::chrono::steady_clock::now();
  first_step_ = state_.global_step;
  while (state_.global_step < stop_step_) {
    const StepResult step = take_step();
    publish(step.record);
    validate_if_due();
    if (state_.global_step >= stop_step_) break;
    if (step.stop) return save_and_stop();
    save_if_due();
  }
  save(state_.global_step >= end_step_ ? "rwkv-final.h5" : "rwkv-step-" + std::to_string(state_.global_step) + ".h5");
  outcome_.global_step = state_.global_step;
  return std::move(outcome_);
}

// One optimizer step on every rank: forward/backward over the micro-batches, the gradient exchange, the
// update (skipped for a non-finite loss or gradients), and the record of it.
TrainingRun::StepResult TrainingRun::take_step() {
  const auto step_start = std::chrono::steady_clock::now();
  std::optional<dist::ProgressWatchdog::Scope> computing;  // the step up to its update, collectives included
  if (watchdog_) {
    watchdog_->set_step(state_.global_step + 1);
    computing.emplace(*watchdog_, "forward/backward");
  }
  if (hooks_.before_step) hooks_.before_step(communicator().rank(), state_.global_step + 1);
  const double lr = learning_rate(config_, shape_, state_.global_step);
  optimizer_->set_weight_decay(weight_decay_at(config_, shape_, state_.global_step));
  const double loss_sum = forward_backward();
  const double reduce_wait_ms = wait_for_gradients();
  // The loss of the global batch, and whether any rank was asked to stop (all ranks must stop together).
  std::array<double, 2> shared{loss_sum, stop_requested().load() || launcher_gone() ? 1.0 : 0.0};
  communicator().all_reduce_sum(shared);
  StepResult result;
  StepRecord& record = result.record;
  result.stop = shared[1] > 0;
  record.loss = shared[0] / static_cast<double>(config_.accumulate_grad_batches * world_);
  record.lr = lr;
  record.reduce_wait_ms = reduce_wait_ms;
  StepReport report;
  if (std::isfinite(record.loss)) report = zero_ ? zero_->step(lr) : optimizer_->step(lr);
  computing.reset();
  record.grad_norm = report.grad_norm;
  record.skipped = !report.applied;
  ++state_.global_step;
  count_skipped_update(record);
  measure_step(record, step_start);
  return result;
}

// The step's micro-batches through forward and backward, gradients accumulated; returns the sum of their losses.
double TrainingRun::forward_backward() {
  const int64_t accumulate = config_.accumulate_grad_batches;
  model_->zero_grad();
  double loss_sum = 0;
  for (int64_t micro = 0; micro < accumulate; ++micro) {
    const std::span<int32_t> tokens(batch_tokens_);
    const size_t half = tokens.size() / 2;
    batches_->fill(static_cast<uint64_t>(state_.global_step * accumulate + micro), tokens.first(half),
                   tokens.last(half));
    const Tensor both = Tensor::from_vector(batch_tokens_, {2, config_.micro_bsz, config_.ctx_len}).to(device_);
    const Tensor inputs = both.slice(0, 0, 1).view({config_.micro_bsz, config_.ctx_len});
    const Tensor targets = both.slice(0, 1, 2).view({config_.micro_bsz, config_.ctx_len});
    // Dropout keyed by the global sample number of each row (the sampler's numbering), so masks do not depend on
    // the rank layout and a resume continues them.
    ops::DropoutKey dropout{config_.dropout, config_.seed,
                            static_cast<uint64_t>((state_.global_step * accumulate + micro) * world_ *
                                                      config_.micro_bsz +
                                                  communicator().rank()),
                            static_cast<uint64_t>(world_)};
    const ag::Variable loss = model_->loss(inputs, targets, config_.dropout > 0 ? &dropout : nullptr);
    if (gradients_ && micro == accumulate - 1) gradients_->prepare_for_final_backward();
    // Each micro-batch's mean loss counts 1/accumulate of the step's loss.
    loss.backward(accumulate == 1 ? Tensor() : Tensor::full({}, 1.0 / static_cast<double>(accumulate),
                                                            loss.dtype(), device_));
    // Read after backward is queued: on a GPU reading it first would hold backward back until forward is done.
    loss_sum += loss.data().item();
  }
  return loss_sum;
}

// Waits for the last gradient all-reduces (the communication backward did not hide); returns the wait in ms.
double TrainingRun::wait_for_gradients() {
  if (!gradients_) return 0;  // ZeRO-1 reduce-scatters them in its step instead
  const auto waiting = std::chrono::steady_clock::now();
  gradients_->finish();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - waiting).count();
}

// A skipped update warns, and too many in a row end training; an applied one counts its tokens.
void TrainingRun::count_skipped_update(const StepRecord& record) {
  if (!record.skipped) {
    bad_in_a_row_ = 0;
    state_.tokens_seen += tokens_per_step_;
    return;
  }
  ++bad_in_a_row_;
  console_.line("warning: step %lld: non-finite %s; update skipped (%lld in a row, limit %lld)",
                static_cast<long long>(state_.global_step), std::isfinite(record.loss) ? "gradients" : "loss",
                static_cast<long long>(bad_in_a_row_), static_cast<long long>(config_.max_bad_steps));
  RWKV_CHECK(bad_in_a_row_ < config_.max_bad_steps, "training stopped: ", bad_in_a_row_,
             " consecutive steps with a non-finite loss or gradients (max_bad_steps); nothing was saved, ",
             outcome_.last_checkpoint.empty() ? std::string("no checkpoint was written by this run")
                                              : "the last good checkpoint is " + outcome_.last_checkpoint);
}

// The step number, its time and throughput, and the memory high-water marks so far.
void TrainingRun::measure_step(StepRecord& record, std::chrono::steady_clock::time_point step_start) const {
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start).count();
  record.step = state_.global_step;
  record.ms = ms;
  record.tokens_per_second = static_cast<double>(tokens_per_step_) / (ms / 1000.0);
  record.rss_peak_bytes = process_peak_rss_bytes();
  const AllocatorStats memory = allocator_for(device_).stats();
  record.allocator_peak_bytes = memory.peak_bytes_reserved > 0 ? memory.peak_bytes_reserved : memory.peak_bytes_in_use;
}

// The step goes to the metrics log, the outcome, the caller's hook and the console.
void TrainingRun::publish(const StepRecord& record) {
  if (log_) log_->append(record);
  outcome_.records.push_back(record);
  if (hooks_.on_step) hooks_.on_step(record);
  show_progress(record);
}

void TrainingRun::show_progress(const StepRecord& record) const {
  const int64_t step = state_.global_step;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start_).count();
  const double eta = elapsed / static_cast<double>(step - first_step_) * static_cast<double>(stop_step_ - step);
  if (step % config_.log_every == 0 || step == stop_step_) {
    char mfu[32] = "";
    if (peak_tflops_) {
      const double utilisation =
          model_flops_utilisation(non_embedding_parameters_, record.tokens_per_second, *peak_tflops_);
      std::snprintf(mfu, sizeof(mfu), " | MFU %.1f%%", 100.0 * utilisation);
    }
    console_.line("step %lld/%lld | loss %.4f | gnorm %.3f | lr %.3e | %.0f ms | %s tok/s%s | eta %.0fs",
                  static_cast<long long>(step), static_cast<long long>(stop_step_), record.loss, record.grad_norm,
                  record.lr, record.ms, human_count(record.tokens_per_second).c_str(), mfu, eta);
  } else if (console_.terminal && !console_.quiet) {
    // Between log lines a terminal gets a progress bar with the ETA, redrawn in place.
    const double done = static_cast<double>(step) / static_cast<double>(stop_step_);
    const int filled = static_cast<int>(done * 30);
    std::printf("\r[%s%s] step %lld/%lld  loss %.4f  eta %.0fs", std::string(static_cast<size_t>(filled), '#').c_str(),
                std::string(static_cast<size_t>(30 - filled), '.').c_str(), static_cast<long long>(step),
                static_cast<long long>(stop_step_), record.loss, eta);
    std::fflush(stdout);
  }
}

// Validation (all ranks, each a share of the windows) every val_every steps and at the end: after the update,
// before this step's checkpoint.
void TrainingRun::validate_if_due() {
  if (!validation_ || !((config_.val_every > 0 && state_.global_step % config_.val_every == 0) ||
                        state_.global_step >= stop_step_)) {
    return;
  }
  std::optional<dist::ProgressWatchdog::Scope> evaluating;
  if (watchdog_) evaluating.emplace(*watchdog_, "validation");
  const ValidationRecord checked = validation_->evaluate(*model_, device_, state_.global_step, communicator());
  if (log_) log_->append(checked);
  outcome_.validations.push_back(checked);
  console_.line("validation at step %lld | val_loss %.4f | val_ppl %.3f | %s tokens",
                static_cast<long long>(checked.step), checked.loss, checked.perplexity,
                human_count(static_cast<double>(checked.tokens)).c_str());
}

// epoch_save's rwkv-<epoch>.h5 at the end of a mini-epoch, else save_every_steps' rwkv-step-<n>.h5.
void TrainingRun::save_if_due() {
  const bool epoch_end = state_.global_step % shape_.epoch_steps == 0;
  const int64_t run_epoch = state_.global_step / shape_.epoch_steps - 1;  // run-local index of the epoch just done
  if (epoch_end && config_.epoch_save > 0 && run_epoch % config_.epoch_save == 0) {
    save("rwkv-" + std::to_string(config_.epoch_begin + run_epoch) + ".h5");
  } else if (config_.save_every_steps > 0 && state_.global_step % config_.save_every_steps == 0) {
    save("rwkv-step-" + std::to_string(state_.global_step) + ".h5");
  }
}

TrainOutcome TrainingRun::save_and_stop() {
  console_.line("interrupted: saving and stopping");
  save("rwkv-step-" + std::to_string(state_.global_step) + ".h5");
  outcome_.interrupted = true;
  outcome_.global_step = state_.global_step;
  return std::move(outcome_);
}

// A checkpoint of the step just taken, written by rank 0 while the other ranks wait.
void TrainingRun::save(const std::string& name) {
  const std::string path = config_.proj_dir + "/" + name;
  state_.mini_epoch = config_.epoch_begin + state_.global_step / shape_.epoch_steps;
  if (zero_) zero_->gather_moments();  // the file holds full tensors, whatever the number of ranks
  communicator().barrier();  // every rank has finished the step being saved
  if (communicator().is_root()) {  // the ranks hold identical state: one file with the full tensors
    log_->sync();  // the checkpoint's steps are in the metrics log on disk before the checkpoint is
    save_checkpoint(path, *model_, *optimizer_, state_);
    rotate_checkpoints(config_.proj_dir, config_.keep_last);
    log_->write_loss_curve();
  }
  communicator().barrier();  // the file is complete before any rank goes on (or exits)
  if (zero_) zero_->release_moments();
  outcome_.last_checkpoint = path;
  console_.line("saved %s (step %lld)", path.c_str(), static_cast<long long>(state_.global_step));
}

// Whether this rank's launcher has gone (its parent changed); says so once on stderr.
bool TrainingRun::launcher_gone() {
  if (launcher_ == 0 || ::getppid() == launcher_) return false;
  if (!launcher_reported_) {
    std::fprintf(stderr, "rwkv train: rank %d: the launcher (pid %d) is gone; saving and stopping\n",
                 communicator().rank(), static_cast<int>(launcher_));
    launcher_reported_ = true;
  }
  return true;
}

}  // namespace

TrainOutcome run_training(const TrainConfig& config, const TrainerHooks& hooks) {
  return TrainingRun(config, hooks).run();
}

}  // namespace rwkv
