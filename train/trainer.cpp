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
#include <thread>

#include "autograd/functions.h"
#include "core/allocator.h"
#include "core/durable_file.h"
#include "data/batch_builder.h"
#include "data/dataset.h"
#include "core/cuda_runtime.h"
#include "kernels/ops.h"
#include "train/gpu_peaks.h"
#include "train/checkpoint.h"
#include "train/dist/gradient_averager.h"
#ifdef RWKV_HAVE_NCCL
#include "train/dist/nccl_communicator.h"
#endif
#include "train/dist/progress_watchdog.h"
#include "train/dist/watched_communicator.h"
#include "train/dist/zero_optimizer.h"
#include "train/model_init.h"
#include "train/model_io.h"
#include "train/run_log.h"
#include "train/schedule.h"
#include "train/validation.h"

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

// Test hook for tests/cli/data_parallel_hang.sh: RWKV_TEST_HANG_RANK=r with RWKV_TEST_HANG_STEP=s makes rank r
// stop responding (without dying) before it computes step s, as a deadlocked rank or a stuck GPU would.
void hang_if_test_asks(int rank, int64_t step) {
  const char* hang_rank = std::getenv("RWKV_TEST_HANG_RANK");
  const char* hang_step = std::getenv("RWKV_TEST_HANG_STEP");
  if (hang_rank == nullptr || hang_step == nullptr || std::atoll(hang_rank) != rank || std::atoll(hang_step) != step) {
    return;
  }
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

TrainOutcome run_training(const TrainConfig& config_in, const TrainerHooks& hooks) {
  dist::Communicator& launched = hooks.communicator ? *hooks.communicator : dist::process_communicator();
  TrainConfig config = config_in;
  config.validate();
  const Device device = rank_device(config.device, launched);
  // GPU ranks exchange through NCCL (device buffers, no host round trip); the launcher's communicator still
  // carries the NCCL unique id and ends the job on an error.
  std::unique_ptr<dist::Communicator> gpu_collectives;
#ifdef RWKV_HAVE_NCCL
  if (device.is_cuda() && launched.is_data_parallel() && !launched.accepts_device_memory()) {
    gpu_collectives = dist::make_nccl_over_launcher(launched, device.index, std::chrono::seconds(config.dist_timeout));
  }
#endif
  dist::Communicator& collectives = gpu_collectives ? *gpu_collectives : launched;
  // With several ranks, a step's compute or a collective that outlasts dist_timeout ends the job (a hung rank).
  std::optional<dist::ProgressWatchdog> watchdog;
  std::optional<dist::WatchedCommunicator> watched;
  if (launched.world_size() > 1 && config.dist_timeout > 0) {
    watchdog.emplace(std::chrono::seconds(config.dist_timeout), [&launched](const std::string& activity,
                                                                            int64_t step, double seconds) {
      std::fprintf(stderr, "rwkv train: rank %d of %d: no progress for %.0f s in %s (step %lld); aborting\n",
                   launched.rank(), launched.world_size(), seconds, activity.c_str(), static_cast<long long>(step));
      std::fflush(stderr);
      launched.abort(1);
      std::_Exit(1);  // abort returns only for a world of one, which is never watched
    });
    watched.emplace(collectives, *watchdog);
  }
  dist::Communicator& communicator = watched ? static_cast<dist::Communicator&>(*watched) : collectives;
  const int64_t world = communicator.world_size();
  // Rank 0 speaks for the job. mpirun hands its ranks a pseudo-terminal even when the job's output goes to a
  // file, so several ranks never draw a progress bar.
  const Console console{hooks.quiet || !communicator.is_root(), ::isatty(STDOUT_FILENO) != 0 && world == 1};
  RWKV_CHECK(!config.data_file.empty(), "config: data_file is required");
  ops::set_allow_tf32(config.precision == "tf32");  // fp32 keeps full-precision GEMMs (spec §4.7)
  std::error_code error;
  fs::create_directories(config.proj_dir, error);
  RWKV_CHECK(!error && fs::is_directory(config.proj_dir), "config: cannot create proj_dir '", config.proj_dir,
             "': ", error.message());
  if (communicator.is_root()) {  // only rank 0 writes there
    const std::string probe = config.proj_dir + "/.write-test";
    std::ofstream test(probe);
    RWKV_CHECK(test.good(), "config: proj_dir '", config.proj_dir, "' is not writable");
    test.close();
    fs::remove(probe, error);
    // Temporaries that a killed run left behind (a checkpoint, a rewrite of the metrics log, loss.svg, ...).
    remove_stale_temporaries(config.proj_dir, [](std::string_view name) {
      return name.starts_with("rwkv-") || name == "metrics.jsonl" || name == "loss.svg" || name == "run.json" ||
             name == "vocab.json";
    });
  }

  // ---- data
  const data::TokenSource source = data::open_dataset({config.data_file, config.data_type, config.proj_dir});
  if (config.vocab_size == 0) {
    RWKV_CHECK(source.vocab_size().has_value(), "config: vocab_size is required for ", source.kind(),
               " data (the tokenizer's vocabulary size, e.g. 50277 for the GPT-NeoX 20B tokenizer)");
    config.vocab_size = static_cast<int64_t>(*source.vocab_size());
  } else if (source.vocab_size()) {
    RWKV_CHECK(static_cast<uint64_t>(config.vocab_size) >= *source.vocab_size(), "config: vocab_size ",
               config.vocab_size, " is smaller than the ", *source.vocab_size(), " symbols of ", config.data_file);
  }
  if (source.size() <= kScanLimitTokens) source.check_vocab(static_cast<uint64_t>(config.vocab_size));
  // Held-out data is checked here too: bad validation data is an error before training starts.
  std::optional<ValidationSet> validation;
  if (!config.val_data_file.empty()) {
    validation.emplace(config, config.vocab_size, communicator.rank(), static_cast<int>(world));
  }
  const ScheduleShape shape = schedule_shape(config, world);
  const int64_t end_step = schedule_end_step(config, shape);
  const auto sampler = [&] {
    try {
      return data::make_training_sampler(
          {static_cast<uint64_t>(config.ctx_len), config.magic_prime, static_cast<uint64_t>(config.my_pile_shift),
           static_cast<uint64_t>(config.epoch_begin), config.seed, static_cast<uint64_t>(config.my_random_steps)},
          source.size());
    } catch (const Error& e) {  // data shorter than ctx_len, a magic_prime that does not fit: name the data
      RWKV_FAIL("config: ", e.what(), " (data_file ", config.data_file, ")");
    }
  }();
  const data::BatchBuilder batches(source, *sampler, static_cast<uint64_t>(config.vocab_size),
                                   static_cast<uint64_t>(config.micro_bsz), static_cast<uint64_t>(communicator.rank()),
                                   static_cast<uint64_t>(world));

  // ---- model and optimizer
  Rwkv4 model(config.model());
  model.set_gradient_checkpointing(config.grad_cp == 1);
  model.set_activation_dtype(config.precision == "bf16" ? DType::bf16 : DType::f32);
  const std::string resume_from =
      broadcast_string(communicator, communicator.is_root() ? resolve_resume(config, console) : std::string());
  TrainState state;
  std::string origin;
  if (!resume_from.empty()) {
    state = read_train_state(resume_from);
    // The sample order is a pure function of the global step and the global batch: a different world size
    // continues exactly when micro_bsz · accumulate_grad_batches · world size is unchanged.
    const TrainConfig saved = config_from_ini(state.config_ini, resume_from);
    const int64_t saved_batch = saved.micro_bsz * saved.accumulate_grad_batches * state.world_size;
    if (saved_batch != shape.real_bsz) {
      console.line("warning: %s was saved with a global batch of %lld sequences (%lld ranks x micro_bsz %lld x "
                   "accumulate %lld); this run uses %lld, so the sample order and schedule do not continue exactly",
                   resume_from.c_str(), static_cast<long long>(saved_batch), static_cast<long long>(state.world_size),
                   static_cast<long long>(saved.micro_bsz), static_cast<long long>(saved.accumulate_grad_batches),
                   static_cast<long long>(shape.real_bsz));
    }
    origin = "resumed from " + resume_from;
  } else if (!config.load_model.empty()) {
    load_weights_into(model, config.load_model);
    origin = "weights from " + config.load_model + " (fresh optimizer, warmup)";
  } else {
    initialize_rwkv4(model, config.lr_init, config.seed);
    origin = "fresh init (seed " + std::to_string(config.seed) + ")";
  }
  model.to(device);
  Optimizer optimizer(model.named_parameters(), config);  // moments live next to the parameters
  if (!resume_from.empty()) {
    load_checkpoint(resume_from, model, optimizer);
    warn_config_changes(state.config_ini, config, resume_from, console);
  }
  std::optional<dist::ZeroOptimizer> zero;  // zero = 1: this rank keeps its shard of the moments
  if (config.zero == 1) zero.emplace(optimizer, communicator, config);
  std::optional<dist::GradientAverager> gradients;  // zero = 0: all-reduce in buckets, overlapped with backward
  if (!zero) {
    gradients.emplace(communicator, optimizer.slots(),
                      static_cast<size_t>(std::max(1.0, config.grad_bucket_mb * double(1 << 20))));
  }
  state.world_size = world;
  state.rng_seed = config.seed;
  state.sampler = sampler->describe();
  state.config_ini = config.to_ini();

  const int64_t tokens_per_step = config.ctx_len * shape.real_bsz;
  // MFU on a GPU whose peak is known (6 · non-embedding parameters · tokens/s over the bf16 peak).
  std::optional<double> peak_tflops;
  if (device.is_cuda()) peak_tflops = bf16_peak_tflops(cuda::device_name(device.index));
  const double non_embedding_parameters =
      static_cast<double>(model.config().parameter_count() - model.config().vocab_size * model.config().n_embd);
  const int64_t stop_step = config.max_steps > 0 ? std::min(end_step, config.max_steps) : end_step;
  console.line("rwkv train: %s", origin.c_str());
  const char* precision_note = config.precision != "bf16" ? ""
                               : device.is_cuda()         ? " (bf16 activations and GEMMs, fp32 master weights)"
                                                          : " (emulated on the CPU: fp32 arithmetic, slower than fp32)";
  console.line("  device      %s, precision %s%s", device.str().c_str(), config.precision.c_str(), precision_note);
  console.line("  model       RWKV-4 %s, %s parameters (%.1f MiB fp32 + %.1f MiB Adam moments)",
               model.config().describe().c_str(), human_count(static_cast<double>(model.config().parameter_count())).c_str(),
               model.config().parameter_count() * 4.0 / (1 << 20), model.config().parameter_count() * 8.0 / (1 << 20));
  console.line("  data        %s: %s tokens (%s), %s", config.data_file.c_str(),
               human_count(static_cast<double>(source.size())).c_str(), source.kind().c_str(), sampler->describe().c_str());
  if (validation) {
    const std::string when = config.val_every > 0 ? "every " + std::to_string(config.val_every) + " steps and " : "";
    console.line("  validation  %s; %sat the end", validation->describe().c_str(), when.c_str());
  }
  const std::string ranks_factor = world == 1 ? "" : " x " + std::to_string(world) + " ranks";
  console.line("  batch       micro_bsz %lld x accumulate %lld%s = %lld sequences, %s tokens per step",
               static_cast<long long>(config.micro_bsz), static_cast<long long>(config.accumulate_grad_batches),
               ranks_factor.c_str(), static_cast<long long>(shape.real_bsz),
               human_count(static_cast<double>(tokens_per_step)).c_str());
  console.line("  schedule    %lld steps per mini-epoch, %lld mini-epochs, ends at step %lld (%s); this run: steps "
               "%lld..%lld",
               static_cast<long long>(shape.epoch_steps), static_cast<long long>(shape.epoch_count),
               static_cast<long long>(end_step), schedule_end_reason(config, shape).c_str(),
               static_cast<long long>(state.global_step), static_cast<long long>(stop_step));
  char parallel_note[128] = "";
  if (zero) {
    std::snprintf(parallel_note, sizeof(parallel_note), ", ZeRO-1 (%.2f MiB of Adam moments per rank)",
                  static_cast<double>(zero->moment_floats()) * 4.0 / (1 << 20));
  }
  if (communicator.is_data_parallel() && gradients) {
    std::snprintf(parallel_note, sizeof(parallel_note),
                  ", gradients in %lld bucket%s of <= %g MiB overlapping backward",
                  static_cast<long long>(gradients->bucket_count()), gradients->bucket_count() == 1 ? "" : "s",
                  config.grad_bucket_mb);
  }
  const std::string timeout_note =
      watchdog ? ", hang timeout " + std::to_string(config.dist_timeout) + " s" : std::string();
  console.line("  parallel    %lld rank%s (%d per node), communicator %s%s%s", static_cast<long long>(world),
               world == 1 ? "" : "s", communicator.local_size(), communicator.name().c_str(), parallel_note,
               timeout_note.c_str());
  console.line("  proj_dir    %s", config.proj_dir.c_str());
  if (!console.quiet) std::printf("resolved configuration:\n%s\n", config.to_ini().c_str());

  TrainOutcome outcome;
  outcome.global_step = state.global_step;
  if (state.global_step >= stop_step) {
    console.line("nothing to do: the run is already at step %lld", static_cast<long long>(state.global_step));
    outcome.last_checkpoint = resume_from;
    return outcome;
  }

  std::optional<RunLog> log;  // metrics and the loss curve: rank 0's
  if (communicator.is_root()) {
    log.emplace(config.proj_dir, state.global_step);
    write_run_info(config.proj_dir, {config.to_ini(), origin, device.str(),
                                     device.is_cuda() ? cuda::device_name(device.index) : std::string(), world,
                                     state.global_step});
  }
  auto save = [&](const std::string& name) {
    const std::string path = config.proj_dir + "/" + name;
    state.mini_epoch = config.epoch_begin + state.global_step / shape.epoch_steps;
    if (zero) zero->gather_moments();  // the file holds full tensors, whatever the number of ranks
    communicator.barrier();  // every rank has finished the step being saved
    if (communicator.is_root()) {  // the ranks hold identical state: one file with the full tensors
      log->sync();  // the checkpoint's steps are in the metrics log on disk before the checkpoint is
      save_checkpoint(path, model, optimizer, state);
      rotate_checkpoints(config.proj_dir, config.keep_last);
      log->write_loss_curve();
    }
    communicator.barrier();  // the file is complete before any rank goes on (or exits)
    if (zero) zero->release_moments();
    outcome.last_checkpoint = path;
    console.line("saved %s (step %lld)", path.c_str(), static_cast<long long>(state.global_step));
  };

  // A rank whose launcher was killed (SIGKILL to mpirun cannot be passed on) would otherwise train on as an
  // orphan and write into proj_dir beside the job that replaces it: it stops at the next step, saving like
  // SIGTERM. A plain process is left alone when its shell goes (nohup runs).
  const pid_t launcher = communicator.is_data_parallel() ? ::getppid() : 0;
  bool launcher_reported = false;
  auto launcher_gone = [&] {
    if (launcher == 0 || ::getppid() == launcher) return false;
    if (!launcher_reported) {
      std::fprintf(stderr, "rwkv train: rank %d: the launcher (pid %d) is gone; saving and stopping\n",
                   communicator.rank(), static_cast<int>(launcher));
      launcher_reported = true;
    }
    return true;
  };
  const int64_t accumulate = config.accumulate_grad_batches;
  std::vector<int32_t> x(static_cast<size_t>(config.micro_bsz * config.ctx_len)), y(x.size());
  int64_t bad_in_a_row = 0;
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = state.global_step;
  while (state.global_step < stop_step) {
    const auto step_start = std::chrono::steady_clock::now();
    std::optional<dist::ProgressWatchdog::Scope> computing;  // the step up to its update, collectives included
    if (watchdog) {
      watchdog->set_step(state.global_step + 1);
      computing.emplace(*watchdog, "forward/backward");
    }
    hang_if_test_asks(communicator.rank(), state.global_step + 1);
    const double lr = learning_rate(config, shape, state.global_step);
    optimizer.set_weight_decay(weight_decay_at(config, shape, state.global_step));
    model.zero_grad();
    double loss_sum = 0;
    for (int64_t micro = 0; micro < accumulate; ++micro) {
      batches.fill(static_cast<uint64_t>(state.global_step * accumulate + micro), x, y);
      const Tensor inputs = Tensor::from_vector(x, {config.micro_bsz, config.ctx_len}).to(device);
      const Tensor targets = Tensor::from_vector(y, {config.micro_bsz, config.ctx_len}).to(device);
      // Dropout keyed by the global sample number of each row (the sampler's numbering), so masks do not depend on
      // the rank layout and a resume continues them.
      ops::DropoutKey dropout{config.dropout, config.seed,
                              static_cast<uint64_t>((state.global_step * accumulate + micro) * world * config.micro_bsz +
                                                    communicator.rank()),
                              static_cast<uint64_t>(world)};
      const ag::Variable loss = model.loss(inputs, targets, config.dropout > 0 ? &dropout : nullptr);
      loss_sum += loss.data().item();
      if (gradients && micro == accumulate - 1) gradients->prepare_for_final_backward();
      // Each micro-batch's mean loss counts 1/accumulate of the step's loss.
      loss.backward(accumulate == 1 ? Tensor() : Tensor::full({}, 1.0 / static_cast<double>(accumulate),
                                                              loss.dtype(), device));
    }
    double reduce_wait_ms = 0;
    if (gradients) {  // ZeRO-1 reduce-scatters them in its step instead
      const auto waiting = std::chrono::steady_clock::now();
      gradients->finish();
      reduce_wait_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - waiting).count();
    }
    // The loss of the global batch, and whether any rank was asked to stop (all ranks must stop together).
    std::array<double, 2> shared{loss_sum, stop_requested().load() || launcher_gone() ? 1.0 : 0.0};
    communicator.all_reduce_sum(shared);
    const bool stop_now = shared[1] > 0;
    StepRecord record;
    record.loss = shared[0] / static_cast<double>(accumulate * world);
    record.lr = lr;
    record.reduce_wait_ms = reduce_wait_ms;
    StepReport report;
    if (std::isfinite(record.loss)) report = zero ? zero->step(lr) : optimizer.step(lr);
    computing.reset();
    record.grad_norm = report.grad_norm;
    record.skipped = !report.applied;
    ++state.global_step;
    if (record.skipped) {
      ++bad_in_a_row;
      console.line("warning: step %lld: non-finite %s; update skipped (%lld in a row, limit %lld)",
                   static_cast<long long>(state.global_step), std::isfinite(record.loss) ? "gradients" : "loss",
                   static_cast<long long>(bad_in_a_row), static_cast<long long>(config.max_bad_steps));
      RWKV_CHECK(bad_in_a_row < config.max_bad_steps, "training stopped: ", bad_in_a_row,
                 " consecutive steps with a non-finite loss or gradients (max_bad_steps); nothing was saved, ",
                 outcome.last_checkpoint.empty() ? std::string("no checkpoint was written by this run")
                                                 : "the last good checkpoint is " + outcome.last_checkpoint);
    } else {
      bad_in_a_row = 0;
      state.tokens_seen += tokens_per_step;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start).count();
    record.step = state.global_step;
    record.ms = ms;
    record.tokens_per_second = static_cast<double>(tokens_per_step) / (ms / 1000.0);
    record.rss_peak_bytes = process_peak_rss_bytes();
    const AllocatorStats memory = allocator_for(device).stats();
    record.allocator_peak_bytes =
        memory.peak_bytes_reserved > 0 ? memory.peak_bytes_reserved : memory.peak_bytes_in_use;
    if (log) log->append(record);
    outcome.records.push_back(record);
    if (hooks.on_step) hooks.on_step(record);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const double eta = elapsed / static_cast<double>(state.global_step - first_step) *
                       static_cast<double>(stop_step - state.global_step);
    if (state.global_step % config.log_every == 0 || state.global_step == stop_step) {
      char mfu[32] = "";
      if (peak_tflops) {
        std::snprintf(mfu, sizeof(mfu), " | MFU %.1f%%",
                      100.0 * model_flops_utilisation(non_embedding_parameters, record.tokens_per_second, *peak_tflops));
      }
      console.line("step %lld/%lld | loss %.4f | gnorm %.3f | lr %.3e | %.0f ms | %s tok/s%s | eta %.0fs",
                   static_cast<long long>(state.global_step), static_cast<long long>(stop_step), record.loss,
                   record.grad_norm, lr, ms, human_count(record.tokens_per_second).c_str(), mfu, eta);
    } else if (console.terminal && !console.quiet) {
      // Between log lines a terminal gets a progress bar with the ETA, redrawn in place.
      const double done = static_cast<double>(state.global_step) / static_cast<double>(stop_step);
      const int filled = static_cast<int>(done * 30);
      std::printf("\r[%s%s] step %lld/%lld  loss %.4f  eta %.0fs", std::string(static_cast<size_t>(filled), '#').c_str(),
                  std::string(static_cast<size_t>(30 - filled), '.').c_str(), static_cast<long long>(state.global_step),
                  static_cast<long long>(stop_step), record.loss, eta);
      std::fflush(stdout);
    }
    // Validation (all ranks, each a share of the windows): after the update, before this step's checkpoint.
    if (validation && ((config.val_every > 0 && state.global_step % config.val_every == 0) ||
                       state.global_step >= stop_step)) {
      std::optional<dist::ProgressWatchdog::Scope> evaluating;
      if (watchdog) evaluating.emplace(*watchdog, "validation");
      const ValidationRecord checked = validation->evaluate(model, device, state.global_step, communicator);
      if (log) log->append(checked);
      outcome.validations.push_back(checked);
      console.line("validation at step %lld | val_loss %.4f | val_ppl %.3f | %s tokens",
                   static_cast<long long>(checked.step), checked.loss, checked.perplexity,
                   human_count(static_cast<double>(checked.tokens)).c_str());
    }
    const bool epoch_end = state.global_step % shape.epoch_steps == 0;
    const int64_t run_epoch = state.global_step / shape.epoch_steps - 1;  // run-local index of the epoch just done
    if (state.global_step >= stop_step) break;
    if (stop_now) {
      console.line("interrupted: saving and stopping");
      save("rwkv-step-" + std::to_string(state.global_step) + ".h5");
      outcome.interrupted = true;
      outcome.global_step = state.global_step;
      return outcome;
    }
    if (epoch_end && config.epoch_save > 0 && run_epoch % config.epoch_save == 0) {
      save("rwkv-" + std::to_string(config.epoch_begin + run_epoch) + ".h5");
    } else if (config.save_every_steps > 0 && state.global_step % config.save_every_steps == 0) {
      save("rwkv-step-" + std::to_string(state.global_step) + ".h5");
    }
  }
  save(state.global_step >= end_step ? "rwkv-final.h5" : "rwkv-step-" + std::to_string(state.global_step) + ".h5");
  outcome.global_step = state.global_step;
  return outcome;
}

}  // namespace rwkv
