// The training configuration: one table of every option (name, type, default, help) drives the command line,
// INI config files (Boost.Program_options syntax, `key = value`), validation and the resolved-config dump.
// Names follow RWKV-LM's train.py where one exists. Command-line values beat the file's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "train/model/model_config.h"

namespace rwkv {

struct TrainConfig {
  // ---- run and files
  std::string proj_dir = "out";     // checkpoints, metrics and logs go here
  std::string load_model;           // weights to start from (fine-tuning); empty = fresh init
  std::string resume;               // "", "auto" (newest valid checkpoint in proj_dir) or a checkpoint path
  std::string data_file;            // binidx prefix/glob/list, .npy, or a text file
  std::string data_type;            // binidx, numpy, utf-8, bytes; empty = from the file name
  std::string device = "auto";      // auto, cpu, cuda, cuda:N
  std::string precision = "fp32";   // fp32, tf32, bf16
  std::string optimizer = "adam";   // adam (AdamW when weight_decay > 0), sgd
  uint64_t seed = 42;
  // ---- model
  int64_t vocab_size = 0;
  int64_t ctx_len = 1024;
  int64_t n_layer = 12;
  int64_t n_embd = 768;
  int64_t dim_att = 0;
  int64_t dim_ffn = 0;
  // ---- schedule (spec §4.4-4.5)
  int64_t epoch_steps = 1000;       // optimizer steps per mini-epoch (forced to 40320 / real_bsz with magic_prime)
  int64_t epoch_count = 500;        // mini-epochs of the lr schedule
  int64_t epoch_begin = 0;          // absolute index of this run's first mini-epoch
  int64_t epoch_save = 5;           // save every N mini-epochs (0 = only at the end)
  int64_t micro_bsz = 12;
  int64_t accumulate_grad_batches = 1;
  int64_t max_steps = 0;            // stop at this global step (0 = when the schedule ends); never changes the schedule
  double lr_init = 6e-4;
  double lr_final = 1e-5;
  int64_t warmup_steps = -1;        // -1 = none (RWKV-LM's default)
  double beta1 = 0.9;
  double beta2 = 0.99;
  double adam_eps = 1e-8;
  double weight_decay = 0.0;
  double grad_clip = 1.0;           // global-norm clipping (0 = off)
  int64_t layerwise_lr = 1;
  int64_t my_pile_stage = 0;
  int64_t my_pile_edecay = 0;
  int64_t my_pile_shift = 0;
  uint64_t magic_prime = 0;         // 0 = random sampling
  int64_t my_exit_tokens = 0;       // cosine schedule and end of run by tokens (spec §4.4)
  int64_t grad_cp = 0;              // 1 = activation checkpointing per block
  int64_t zero = 0;                 // 1 = ZeRO-1: Adam moments sharded across data-parallel ranks
  double grad_bucket_mb = 25;       // data-parallel gradient all-reduce bucket size (MiB)
  int64_t dist_timeout = 600;       // seconds a rank may wait in a collective or compute a step (0 = forever)
  // ---- checkpoints and feedback
  int64_t save_every_steps = 0;     // also save every N steps (0 = off)
  int64_t keep_last = 3;            // checkpoints kept by rotation (0 = keep all)
  int64_t log_every = 1;
  int64_t max_bad_steps = 5;        // consecutive NaN/Inf steps before stopping with an error
  // ---- validation (held-out loss during training)
  std::string val_data_file;        // same forms as data_file; empty = no validation
  std::string val_data_type;        // as data_type; empty = from the file name
  int64_t val_every = 0;            // also evaluate every N steps (0 = only at the end of the run)
  int64_t val_max_windows = 0;      // windows of ctx_len + 1 per evaluation (0 = all)
  // ---- RWKV-4 fine-tuning knobs of RWKV-LM v4neo (defaults are RWKV-LM's)
  double dropout = 0.0;             // nn.Dropout after the embedding and after each residual add (0 = off)
  double weight_decay_final = -1;   // > 0: weight decay decays to this with the lr schedule's progress
  int64_t my_random_steps = 0;      // magic prime: samples ii < my_random_steps are random windows
  int64_t my_exit = 99999999;       // stop after this absolute mini-epoch

  ModelConfig model() const;
  // Checks values and combinations; the error names the key and the expected form.
  void validate() const;
  // Every option as `key = value` lines in table order (stored in checkpoints, printed at start).
  std::string to_ini() const;
};

struct ParsedConfig {
  TrainConfig config;
  bool help = false;
  std::string help_text;
  std::vector<std::string> set_keys;  // keys given in the file or on the command line
  std::map<std::string, std::string> extra;  // values of the subcommand's own options that were given
  // RWKV-LM train.py / Lightning flags that only steer what this trainer does differently, as given (e.g.
  // "strategy" -> "deepspeed_stage_2", "devices" -> "4"); they are not part of the resolved config.
  std::map<std::string, std::string> rwkv_lm_flags;
  // One line per such flag given, saying what this trainer does instead (printed at start by rank 0).
  std::vector<std::string> notes;
  // --devices N (and --num_nodes M): the ranks RWKV-LM's Lightning would start; 0 when not given.
  int64_t devices() const;
  int64_t num_nodes() const;
};

// The --help section on RWKV-LM's flags: every RWKV-LM v4neo train.py / Lightning flag and what it maps to.
std::string rwkv_lm_flags_help();

// A command-line-only string option that a subcommand handles itself (e.g. `rwkv init --out X.h5`).
struct ExtraOption {
  std::string name;
  std::string help;
};

// Parses `--config FILE` (optional) and `--key value` overrides. Unknown or misspelt keys are errors that name
// the key (and its file and line) and suggest the nearest valid one; bad values name the key and the expected
// form.
ParsedConfig parse_train_config(const std::vector<std::string>& args, const std::vector<ExtraOption>& extra = {});
// Reads a resolved config text (to_ini output, e.g. from a checkpoint) back.
TrainConfig config_from_ini(const std::string& text, const std::string& origin);

// The option of `known` closest to `key` by edit distance (empty when nothing is reasonably close).
std::string nearest_option(const std::string& key, const std::vector<std::string>& known);

}  // namespace rwkv
