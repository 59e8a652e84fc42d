#include "train/config/config.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <variant>

#include "core/error.h"

namespace rwkv {

namespace po = boost::program_options;

namespace {

using FieldPointer = std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, uint64_t TrainConfig::*,
                                  double TrainConfig::*>;

struct Option {
  const char* name;
  FieldPointer field;
  const char* help;
};

// The one table of options, in the order of --help and of the resolved-config dump.
const std::vector<Option>& option_table() {
  static const std::vector<Option> table = {
      {"proj_dir", &TrainConfig::proj_dir, "directory for checkpoints, metrics and logs"},
      {"load_model", &TrainConfig::load_model, "HDF5 weights to start from (fine-tuning: fresh optimizer, warmup)"},
      {"resume", &TrainConfig::resume, "'auto' (newest valid checkpoint in proj_dir) or a checkpoint path"},
      {"data_file", &TrainConfig::data_file, "binidx prefix, glob or comma list; .npy; or a text file"},
      {"data_type", &TrainConfig::data_type, "binidx, numpy, utf-8 or bytes (empty: from the file name)"},
      {"device", &TrainConfig::device, "auto, cpu, cuda or cuda:N"},
      {"precision", &TrainConfig::precision, "fp32, tf32 or bf16"},
      {"optimizer", &TrainConfig::optimizer, "adam (AdamW when weight_decay > 0) or sgd (for debugging)"},
      {"seed", &TrainConfig::seed, "random seed (init and random sampling)"},
      {"vocab_size", &TrainConfig::vocab_size, "vocabulary size (0: from the data when it can tell)"},
      {"ctx_len", &TrainConfig::ctx_len, "training context length T"},
      {"n_layer", &TrainConfig::n_layer, "number of blocks"},
      {"n_embd", &TrainConfig::n_embd, "residual width C"},
      {"dim_att", &TrainConfig::dim_att, "time-mix width (0: n_embd)"},
      {"dim_ffn", &TrainConfig::dim_ffn, "channel-mix hidden width (0: 4 n_embd)"},
      {"epoch_steps", &TrainConfig::epoch_steps, "optimizer steps per mini-epoch (40320 / global batch with magic_prime)"},
      {"epoch_count", &TrainConfig::epoch_count, "mini-epochs of the learning-rate schedule"},
      {"epoch_begin", &TrainConfig::epoch_begin, "absolute index of this run's first mini-epoch"},
      {"epoch_save", &TrainConfig::epoch_save, "save every N mini-epochs (0: only at the end)"},
      {"micro_bsz", &TrainConfig::micro_bsz, "sequences per device per micro-step"},
      {"accumulate_grad_batches", &TrainConfig::accumulate_grad_batches, "micro-batches per optimizer step"},
      {"max_steps", &TrainConfig::max_steps, "stop at this global step (0: when the schedule ends)"},
      {"lr_init", &TrainConfig::lr_init, "initial learning rate"},
      {"lr_final", &TrainConfig::lr_final, "final learning rate"},
      {"warmup_steps", &TrainConfig::warmup_steps, "warmup steps (-1: none)"},
      {"beta1", &TrainConfig::beta1, "Adam beta1"},
      {"beta2", &TrainConfig::beta2, "Adam beta2"},
      {"adam_eps", &TrainConfig::adam_eps, "Adam epsilon (added after the bias-corrected square root)"},
      {"weight_decay", &TrainConfig::weight_decay, "decoupled weight decay on matrices (AdamW)"},
      {"grad_clip", &TrainConfig::grad_clip, "global gradient-norm clipping (0: off)"},
      {"layerwise_lr", &TrainConfig::layerwise_lr, "1: time_decay 2x, time_first 3x learning rate (spec 4.2)"},
      {"my_pile_stage", &TrainConfig::my_pile_stage, "RWKV-LM Pile stage (2: all time_* at 5x learning rate)"},
      {"my_pile_edecay", &TrainConfig::my_pile_edecay, "mini-epochs before the learning-rate decay starts"},
      {"my_pile_shift", &TrainConfig::my_pile_shift, "token offset added to every magic-prime window"},
      {"magic_prime", &TrainConfig::magic_prime, "deterministic sampling prime (0: random sampling)"},
      {"my_exit_tokens", &TrainConfig::my_exit_tokens, "cosine schedule length in tokens and end of run (0: off)"},
      {"grad_cp", &TrainConfig::grad_cp, "1: activation checkpointing per block"},
      {"zero", &TrainConfig::zero, "1: ZeRO-1, Adam moments sharded across data-parallel ranks (adam only)"},
      {"grad_bucket_mb", &TrainConfig::grad_bucket_mb,
       "data-parallel: MiB of gradients per all-reduce bucket, reduced while backward goes on"},
      {"save_every_steps", &TrainConfig::save_every_steps, "also save every N steps (0: off)"},
      {"keep_last", &TrainConfig::keep_last, "checkpoints kept by rotation (0: all)"},
      {"log_every", &TrainConfig::log_every, "log a line every N steps"},
      {"max_bad_steps", &TrainConfig::max_bad_steps, "consecutive NaN/Inf steps tolerated before stopping"},
      // Newer keys go last: checkpoints written before they existed still compare line by line on resume.
      {"dist_timeout", &TrainConfig::dist_timeout,
       "data-parallel: seconds a step's compute or a collective may take before the job is aborted as hung "
       "(0: wait forever)"},
      {"val_data_file", &TrainConfig::val_data_file,
       "held-out data evaluated during training, same forms as data_file (empty: no validation)"},
      {"val_data_type", &TrainConfig::val_data_type, "binidx, numpy, utf-8 or bytes (empty: from the file name)"},
      {"val_every", &TrainConfig::val_every, "also evaluate val_data_file every N steps (0: only at the end)"},
      {"val_max_windows", &TrainConfig::val_max_windows, "windows of ctx_len + 1 per evaluation (0: all)"},
      {"dropout", &TrainConfig::dropout,
       "dropout probability on the embedding and after every residual add, as RWKV-LM (0: off)"},
      {"weight_decay_final", &TrainConfig::weight_decay_final,
       "> 0: the weight decay falls exponentially to this with the lr schedule's progress (-1: constant)"},
      {"my_random_steps", &TrainConfig::my_random_steps,
       "magic prime: samples ii < N read random windows and the prime's order starts after them"},
      {"my_exit", &TrainConfig::my_exit, "stop after this absolute mini-epoch (99999999: never)"},
  };
  return table;
}

// RWKV-LM v4neo train.py and PyTorch Lightning flags that have no key of their own here. They are accepted so
// that RWKV-LM command lines and scripts run unchanged: a model variant this trainer does not implement is
// refused unless it has RWKV-LM's "off" value; everything else is accepted and, when it asks for something
// other than RWKV-LM's default, gets one startup line saying what this trainer does instead.
struct RwkvLmFlag {
  const char* name;
  const char* off_value;  // RWKV-LM's default (nullptr: noted whenever it is given)
  bool refused;           // a model variant: any other value is an error
  const char* what;       // what this trainer does instead, or why it is refused
};

const std::vector<RwkvLmFlag>& rwkv_lm_flag_table() {
  static const std::vector<RwkvLmFlag> table = {
      // handled specially in apply_rwkv_lm_flags
      {"random_seed", "-1", false, "seed (>= 0 sets seed; -1, RWKV-LM's default, keeps seed, default 42)"},
      {"accelerator", "auto", false, "device: gpu/cuda -> cuda, cpu -> cpu, auto -> device"},
      {"devices", "1", false, "ranks: with accelerator gpu, N > 1 starts N ranks like --gpus N; under a launcher "
                              "(mpirun, srun, torchrun) devices x num_nodes must equal its world size"},
      {"num_nodes", "1", false, "nodes: > 1 needs a launcher (mpirun/srun) that starts devices x num_nodes ranks"},
      // accepted, with a note
      {"wandb", "", false, "no wandb: every step is in proj_dir/metrics.jsonl; `rwkv report --run proj_dir` draws it"},
      {"strategy", "auto", false,
       "no DeepSpeed/Lightning: data-parallel over the ranks with a bucketed all-reduce (zero = 1 shards the Adam "
       "moments like ZeRO stage 1; optimizer offload is not implemented)"},
      {"ds_bucket_mb", "200", false, "the all-reduce buckets are grad_bucket_mb (MiB, default 25)"},
      {"cuda_cleanup", "0", false, "nothing to clean up: the trainer uses its own caching allocator"},
      {"head_size_a", "64", false, "RWKV-5/6 only; RWKV-4 has no heads"},
      {"head_size_divisor", "8", false, "RWKV-5/6 only; RWKV-4 has no heads"},
      {"tiny_att_layer", "-999", false, "only used with tiny_att_dim > 0, which is refused"},
      {"gradient_clip_val", nullptr, false, "RWKV-LM's train.py sets it to 1.0; the clip norm here is grad_clip"},
      {"max_epochs", nullptr, false, "RWKV-LM's train.py sets it to -1; the run ends as `schedule` at start says"},
      {"check_val_every_n_epoch", nullptr, false, "set by RWKV-LM's train.py; validation here is val_data_file"},
      {"num_sanity_val_steps", nullptr, false, "set to 0 by RWKV-LM's train.py; nothing to do"},
      {"log_every_n_steps", nullptr, false, "set by RWKV-LM's train.py; the log interval here is log_every"},
      {"enable_checkpointing", nullptr, false, "set to False by RWKV-LM's train.py; saves follow epoch_save"},
      {"replace_sampler_ddp", nullptr, false, "set to False by RWKV-LM's train.py; ranks interleave samples (spec 5.3)"},
      {"logger", nullptr, false, "set to False by RWKV-LM's train.py; metrics go to proj_dir/metrics.jsonl"},
      {"default_root_dir", nullptr, false, "files go to proj_dir"},
      // model variants the RWKV-4 Pile models never used: refused unless off
      {"pre_ffn", "0", true, "pre_ffn (a ChannelMix in place of block 0's TimeMix) is not implemented"},
      {"head_qk", "0", true, "head_qk (the headQK copy-attention on the output) is not implemented"},
      {"tiny_att_dim", "0", true, "tiny_att_dim (RWKV-4a tiny attention) is not implemented"},
      {"my_pos_emb", "0", true, "my_pos_emb (2-D positional embedding for images) is not implemented"},
      {"my_qa_mask", "0", true, "my_qa_mask (Pile/QA alternation with a masked loss) is not implemented"},
      {"my_testing", "", true, "my_testing variants (MishGLU, extra attention, ...) are not implemented"},
      {"my_ffn_shift", "1", true, "RWKV-4's channel-mix always uses the token shift (my_ffn_shift 1)"},
      {"my_att_shift", "1", true, "RWKV-4's time-mix always uses the token shift (my_att_shift 1)"},
      {"load_partial", "0", true, "load_partial is not implemented: --load_model needs every tensor"},
      {"my_pile_version", "1", true, "my_pile_version 2 (the Pile v2 file list and its sampling) is not implemented"},
      {"my_sample_len", "0", true, "my_sample_len belongs to data_type uint16, which is not implemented"},
      {"my_img_version", "0", true, "image models are not implemented"},
      {"my_img_size", "0", true, "image models are not implemented"},
      {"my_img_bit", "0", true, "image models are not implemented"},
      {"my_img_clip", "x", true, "image models are not implemented"},
      {"my_img_clip_scale", "1", true, "image models are not implemented"},
      {"my_img_l1_scale", "0", true, "image models are not implemented"},
      {"my_img_encoder", "x", true, "image models are not implemented"},
  };
  return table;
}

// RWKV-LM's own keys that this trainer has under the same name (the help lists them as "same").
constexpr const char* kSameAsRwkvLm[] = {
    "load_model", "proj_dir", "data_file", "data_type", "vocab_size", "ctx_len", "epoch_steps", "epoch_count",
    "epoch_begin", "epoch_save", "micro_bsz", "n_layer", "n_embd", "dim_att", "dim_ffn", "lr_init", "lr_final",
    "warmup_steps", "beta1", "beta2", "adam_eps", "grad_cp", "dropout", "weight_decay", "weight_decay_final",
    "my_pile_stage", "my_pile_shift", "my_pile_edecay", "layerwise_lr", "magic_prime", "my_random_steps", "my_exit",
    "my_exit_tokens", "accumulate_grad_batches"};

// Equal as numbers when both read as numbers ("1.0" == "1"), else as text.
bool same_value(const std::string& a, const std::string& b) {
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  if (!a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0') return x == y;
  return a == b;
}

int64_t flag_integer(const std::string& name, const std::string& text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  RWKV_CHECK(error == std::errc() && end == text.data() + text.size(), "config: ", name,
             " expects an integer, got '", text, "'");
  return value;
}

const char* type_name(const FieldPointer& field) {
  switch (field.index()) {
    case 0: return "a string";
    case 1: return "an integer";
    case 2: return "a non-negative integer";
    default: return "a number";
  }
}

std::vector<std::string> option_names() {
  std::vector<std::string> names;
  for (const Option& option : option_table()) names.emplace_back(option.name);
  for (const RwkvLmFlag& flag : rwkv_lm_flag_table()) names.emplace_back(flag.name);
  return names;
}

po::options_description make_rwkv_lm_description() {
  po::options_description description("RWKV-LM train.py / Lightning flags");
  for (const RwkvLmFlag& flag : rwkv_lm_flag_table()) {
    description.add_options()(flag.name, po::value<std::string>(), flag.what);
  }
  return description;
}

// Applies the RWKV-LM flags that were given: refuses model variants, maps random_seed, accelerator and the
// precision spellings RWKV-LM accepts, and writes one note per flag that this trainer handles differently.
void apply_rwkv_lm_flags(ParsedConfig& result) {
  TrainConfig& config = result.config;
  for (const RwkvLmFlag& flag : rwkv_lm_flag_table()) {
    const auto given = result.rwkv_lm_flags.find(flag.name);
    if (given == result.rwkv_lm_flags.end()) continue;
    const std::string name = flag.name, value = given->second;
    const bool off = flag.off_value != nullptr && same_value(value, flag.off_value);
    if (name == "random_seed") {
      const int64_t seed = flag_integer(name, value);
      RWKV_CHECK(seed >= -1, "config: random_seed must be -1 (RWKV-LM's default) or >= 0, got ", seed);
      if (seed >= 0) config.seed = static_cast<uint64_t>(seed);
    } else if (name == "accelerator") {
      RWKV_CHECK(value == "gpu" || value == "cuda" || value == "cpu" || value == "auto",
                 "config: accelerator must be gpu, cuda, cpu or auto, got '", value, "'");
      const bool wants_gpu = value == "gpu" || value == "cuda";
      RWKV_CHECK(!(value == "cpu" && config.device.starts_with("cuda")) && !(wants_gpu && config.device == "cpu"),
                 "config: accelerator ", value, " contradicts device = ", config.device);
      if (value == "cpu") config.device = "cpu";
      if (wants_gpu && config.device == "auto") config.device = "cuda";
    } else if (name == "devices" || name == "num_nodes") {
      RWKV_CHECK(flag_integer(name, value) >= 1, "config: ", name, " must be a positive integer, got '", value,
                 "'");
    } else if (flag.refused) {
      RWKV_CHECK(off, "config: ", name, " ", value, " is refused: ", flag.what, " (RWKV-4 as the Pile models use it ",
                 "has ", name, " ", flag.off_value, ")");
    } else if (!off) {
      result.notes.push_back(detail::concat("note: ", name, " ", value, ": ", flag.what));
    }
  }
  // Lightning's max_steps -1 means "no limit", like 0 here.
  if (config.max_steps == -1) config.max_steps = 0;
  // RWKV-LM's --precision: "fp32" keeps fp32 GEMMs, anything with "32" is precision 32 with TF32 on (tf32),
  // "fp16" is Lightning's fp16 AMP, and anything else (bf16, "16", "bf16-mixed") is bf16.
  const std::string precision = config.precision;
  RWKV_CHECK(precision != "fp16" && precision != "16-mixed",
             "config: precision ", precision, " is refused: fp16 mixed precision needs loss scaling, which is not "
             "implemented; use bf16 (RWKV-LM's README and the Pile models use bf16)");
  if (precision != "fp32" && precision != "tf32" && precision.find("32") != std::string::npos) {
    config.precision = "tf32";
  } else if (precision == "16" || precision == "bf16-mixed") {
    config.precision = "bf16";
  }
  if (config.precision != precision) {
    result.notes.push_back(detail::concat("note: precision ", precision, " is RWKV-LM's ", config.precision));
  }
}

po::options_description make_description(TrainConfig& config, bool with_config_option, std::string* config_path) {
  po::options_description description("options (also valid as `key = value` lines in a --config file)");
  if (with_config_option) {
    description.add_options()("help,h", "show this help")("config", po::value<std::string>(config_path),
                                                          "INI file of options; command-line values override it");
  }
  const TrainConfig defaults;
  for (const Option& option : option_table()) {
    std::visit(
        [&](auto member) {
          using Value = std::remove_reference_t<decltype(config.*member)>;
          std::ostringstream shown;
          shown << defaults.*member;
          description.add_options()(option.name,
                                    po::value<Value>(&(config.*member))->default_value(defaults.*member, shown.str()),
                                    option.help);
        },
        option.field);
  }
  return description;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& where) {
  const std::string suggestion = nearest_option(key, option_names());
  RWKV_FAIL(where, "unknown option '", key, "'",
            suggestion.empty() ? std::string("; `rwkv train --help` lists the options")
                               : "; did you mean '" + suggestion + "'?");
}

int line_of(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos && line.compare(start, key.size(), key) == 0) return number;
  }
  return 0;
}

// Parses INI text into `parsed` (values not yet stored); unknown keys are errors naming `origin` and the line.
po::parsed_options parse_ini(const std::string& text, const std::string& origin, const po::options_description& d) {
  std::istringstream stream(text);
  po::parsed_options parsed = [&] {
    try {
      return po::parse_config_file(stream, d, /*allow_unregistered=*/true);
    } catch (const po::error& e) {  // e.g. a line that is not `key = value`
      RWKV_FAIL(origin, ": ", e.what(), " (lines must be `key = value`, `# comment` or `[section]`)");
    }
  }();
  for (const po::option& option : parsed.options) {
    if (option.unregistered) {
      const int line = line_of(text, option.string_key);
      unknown_key(option.string_key, origin + (line ? ":" + std::to_string(line) : std::string()) + ": ");
    }
  }
  return parsed;
}

void store_or_explain(const po::parsed_options& parsed, po::variables_map& values, const std::string& origin) {
  try {
    po::store(parsed, values);
  } catch (const po::error& e) {
    std::string detail = e.what();
    for (const Option& option : option_table()) {
      if (detail.find("'--" + std::string(option.name) + "'") != std::string::npos ||
          detail.find("'" + std::string(option.name) + "'") != std::string::npos) {
        detail += " (" + std::string(option.name) + " expects " + type_name(option.field) + ")";
        break;
      }
    }
    RWKV_FAIL(origin, detail);
  }
}

}  // namespace

std::string nearest_option(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(3, key.size() / 3) + 1;
  for (const std::string& candidate : known) {
    const size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

ParsedConfig parse_train_config(const std::vector<std::string>& args, const std::vector<ExtraOption>& extra) {
  ParsedConfig result;
  std::string config_path;
  po::options_description description = make_description(result.config, true, &config_path);
  for (const ExtraOption& option : extra) {
    description.add_options()(option.name.c_str(), po::value<std::string>(), option.help.c_str());
  }
  const po::options_description rwkv_lm = make_rwkv_lm_description();
  po::options_description all;  // --help shows `description`, then rwkv_lm_flags_help()
  all.add(description).add(rwkv_lm);
  po::variables_map values;
  po::parsed_options command_line = [&] {
    try {
      // No prefix guessing: `--micro_bs` must be an error with a suggestion, not silently micro_bsz.
      return po::command_line_parser(args)
          .options(all)
          .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
          .allow_unregistered()
          .run();
    } catch (const po::error& e) {
      RWKV_FAIL("command line: ", e.what());
    }
  }();
  for (const po::option& option : command_line.options) {
    if (option.unregistered) {
      const std::string key = option.string_key.starts_with("--") ? option.string_key.substr(2) : option.string_key;
      unknown_key(key.empty() ? option.original_tokens.front() : key, "command line: ");
    }
  }
  store_or_explain(command_line, values, "command line: ");  // stored first: the command line wins
  if (values.count("help")) {
    std::ostringstream help;
    help << description << "\n" << rwkv_lm_flags_help();
    result.help = true;
    result.help_text = help.str();
    return result;
  }
  if (values.count("config")) {
    config_path = values["config"].as<std::string>();
    std::ifstream file(config_path);
    RWKV_CHECK(file.good(), "config: cannot read '", config_path, "'");
    std::stringstream text;
    text << file.rdbuf();
    store_or_explain(parse_ini(text.str(), config_path, all), values, config_path + ": ");
  }
  po::notify(values);
  for (const Option& option : option_table()) {
    if (values.count(option.name) && !values[option.name].defaulted()) result.set_keys.emplace_back(option.name);
  }
  for (const ExtraOption& option : extra) {
    if (values.count(option.name)) result.extra[option.name] = values[option.name].as<std::string>();
  }
  for (const RwkvLmFlag& flag : rwkv_lm_flag_table()) {
    if (values.count(flag.name)) result.rwkv_lm_flags[flag.name] = values[flag.name].as<std::string>();
  }
  apply_rwkv_lm_flags(result);
  result.config.validate();
  return result;
}

int64_t ParsedConfig::devices() const {
  const auto given = rwkv_lm_flags.find("devices");
  return given == rwkv_lm_flags.end() ? 0 : flag_integer("devices", given->second);
}

int64_t ParsedConfig::num_nodes() const {
  const auto given = rwkv_lm_flags.find("num_nodes");
  return given == rwkv_lm_flags.end() ? 0 : flag_integer("num_nodes", given->second);
}

std::string rwkv_lm_flags_help() {
  std::ostringstream out;
  out << "RWKV-LM command lines run unchanged (replace `python train.py` by `rwkv train`). Every RWKV-LM v4neo\n"
         "train.py flag and the Lightning flags its scripts pass are accepted, here or in a config file:\n"
         "  same meaning:";
  size_t column = 15;
  for (const char* name : kSameAsRwkvLm) {
    const std::string item = std::string(" ") + name;
    if (column + item.size() > 110) {
      out << "\n   ";
      column = 3;
    }
    out << item;
    column += item.size();
  }
  out << "\n  precision: fp32, tf32, bf16; RWKV-LM's 32 -> tf32, 16 and bf16-mixed -> bf16; fp16 is refused\n"
         "  max_steps: Lightning's -1 (no limit) is 0 here\n";
  for (const RwkvLmFlag& flag : rwkv_lm_flag_table()) {
    out << "  " << flag.name << ": ";
    if (flag.refused) out << "refused unless " << (*flag.off_value ? flag.off_value : "empty") << ": ";
    out << flag.what << "\n";
  }
  return out.str();
}

TrainConfig config_from_ini(const std::string& text, const std::string& origin) {
  TrainConfig config;
  const po::options_description description = make_description(config, false, nullptr);
  po::variables_map values;
  store_or_explain(parse_ini(text, origin, description), values, origin + ": ");
  po::notify(values);
  return config;
}

std::string TrainConfig::to_ini() const {
  std::ostringstream out;
  for (const Option& option : option_table()) {
    std::visit(
        [&](auto member) {
          out << option.name << " = ";
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(this->*member)>, double>) {
            char text[32];  // the shortest text that reads back as the same double
            const auto end = std::to_chars(text, text + sizeof(text), this->*member).ptr;
            out << std::string(text, end);
          } else {
            out << this->*member;
          }
          out << "\n";
        },
        option.field);
  }
  return out.str();
}

ModelConfig TrainConfig::model() const {
  ModelConfig model;
  model.n_layer = n_layer;
  model.n_embd = n_embd;
  model.dim_att = dim_att;
  model.dim_ffn = dim_ffn;
  model.vocab_size = vocab_size;
  model.ctx_len = ctx_len;
  return model;
}

void TrainConfig::validate() const {
  auto positive = [](const char* key, int64_t value) {
    RWKV_CHECK(value > 0, "config: ", key, " must be a positive integer, got ", value);
  };
  auto non_negative = [](const char* key, int64_t value) {
    RWKV_CHECK(value >= 0, "config: ", key, " must be zero or a positive integer, got ", value);
  };
  positive("ctx_len", ctx_len);
  positive("n_layer", n_layer);
  positive("n_embd", n_embd);
  non_negative("dim_att", dim_att);
  non_negative("dim_ffn", dim_ffn);
  non_negative("vocab_size", vocab_size);
  positive("epoch_steps", epoch_steps);
  positive("epoch_count", epoch_count);
  non_negative("epoch_begin", epoch_begin);
  non_negative("epoch_save", epoch_save);
  positive("micro_bsz", micro_bsz);
  positive("accumulate_grad_batches", accumulate_grad_batches);
  non_negative("max_steps", max_steps);
  non_negative("save_every_steps", save_every_steps);
  non_negative("keep_last", keep_last);
  positive("log_every", log_every);
  positive("max_bad_steps", max_bad_steps);
  non_negative("dist_timeout", dist_timeout);
  RWKV_CHECK(warmup_steps >= -1, "config: warmup_steps must be -1 (none) or a non-negative integer, got ",
             warmup_steps);
  RWKV_CHECK(lr_init >= 0 && lr_final >= 0, "config: lr_init and lr_final must be non-negative");
  RWKV_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "config: beta1 and beta2 must be in [0, 1)");
  RWKV_CHECK(adam_eps > 0, "config: adam_eps must be positive, got ", adam_eps);
  RWKV_CHECK(weight_decay >= 0, "config: weight_decay must be non-negative, got ", weight_decay);
  RWKV_CHECK(dropout >= 0 && dropout < 1, "config: dropout must be in [0, 1), got ", dropout);
  RWKV_CHECK(weight_decay_final <= 0 || weight_decay > 0, "config: weight_decay_final ", weight_decay_final,
             " needs weight_decay > 0 (it is where the weight decay falls to)");
  non_negative("my_random_steps", my_random_steps);
  RWKV_CHECK(my_random_steps == 0 || magic_prime != 0,
             "config: my_random_steps replaces the first magic-prime samples by random ones; it needs magic_prime");
  non_negative("my_exit", my_exit);
  RWKV_CHECK(grad_clip >= 0, "config: grad_clip must be non-negative (0 = off), got ", grad_clip);
  RWKV_CHECK(layerwise_lr == 0 || layerwise_lr == 1, "config: layerwise_lr must be 0 or 1, got ", layerwise_lr);
  RWKV_CHECK(grad_cp == 0 || grad_cp == 1, "config: grad_cp must be 0 or 1, got ", grad_cp);
  RWKV_CHECK(zero == 0 || zero == 1, "config: zero must be 0 or 1, got ", zero);
  RWKV_CHECK(grad_bucket_mb > 0 && grad_bucket_mb <= 1 << 20, "config: grad_bucket_mb must be above 0 (MiB), got ",
             grad_bucket_mb);
  RWKV_CHECK(zero == 0 || optimizer == "adam", "config: zero = 1 shards Adam moments; it needs optimizer = adam");
  RWKV_CHECK(my_pile_stage >= 0 && my_pile_stage <= 4, "config: my_pile_stage must be 0..4, got ", my_pile_stage);
  non_negative("my_pile_edecay", my_pile_edecay);
  non_negative("my_pile_shift", my_pile_shift);
  RWKV_CHECK(precision == "fp32" || precision == "tf32" || precision == "bf16",
             "config: precision must be fp32, tf32 or bf16, got '", precision, "'");
  RWKV_CHECK(optimizer == "adam" || optimizer == "sgd", "config: optimizer must be adam or sgd, got '", optimizer,
             "'");
  RWKV_CHECK(device == "auto" || device == "cpu" || device == "cuda" || device.starts_with("cuda:"),
             "config: device must be auto, cpu, cuda or cuda:N, got '", device, "'");
  non_negative("val_every", val_every);
  non_negative("val_max_windows", val_max_windows);
  RWKV_CHECK(!val_data_file.empty() || (val_every == 0 && val_max_windows == 0 && val_data_type.empty()),
             "config: val_every, val_max_windows and val_data_type need val_data_file (the held-out data)");
  RWKV_CHECK(val_data_type.empty() || val_data_type == "binidx" || val_data_type == "numpy" ||
                 val_data_type == "utf-8" || val_data_type == "bytes",
             "config: val_data_type must be binidx, numpy, utf-8 or bytes, got '", val_data_type, "'");
  RWKV_CHECK(data_type.empty() || data_type == "binidx" || data_type == "numpy" || data_type == "utf-8" ||
                 data_type == "bytes",
             "config: data_type must be binidx, numpy, utf-8 or bytes, got '", data_type, "'");
}

}  // namespace rwkv
