// RWKV-LM compatibility: magic primes of any size and where their runs end (spec §4.4, §4.5, §5.3), the
// weight-decay schedule, my_random_steps, my_exit, and RWKV-LM v4neo train.py command lines parsed unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>
#include <sstream>

#include "data/magic_prime.h"
#include "data/sampler.h"
#include "tests/test_util.h"
#include "train/config/config.h"
#include "train/optim/schedule.h"

namespace rwkv {
namespace {

using testing::error_of;

// Splits a shell-like command line (only "" quoting, as in RWKV-LM's README) into arguments.
std::vector<std::string> split_command_line(const std::string& line) {
  std::vector<std::string> args;
  std::istringstream words(line);
  std::string word;
  while (words >> word) args.push_back(word == "\"\"" ? std::string() : word);
  return args;
}

TrainConfig small_magic_config(uint64_t prime, int64_t micro_bsz) {
  TrainConfig c;
  c.ctx_len = 512;
  c.micro_bsz = micro_bsz;
  c.magic_prime = prime;
  c.lr_init = 6e-4;
  c.lr_final = 1e-5;
  return c;
}

// The example: `rwkv tokenize ... --ctx_len 512` printed magic_prime 1619, which is below one mini-epoch.
TEST(RwkvLmMagicPrime, SmallPrimeKeepsLrInitAndEndsAfterOnePass) {
  const TrainConfig c = small_magic_config(1619, 12);
  const ScheduleShape shape = schedule_shape(c, 1);
  EXPECT_EQ(shape.epoch_count, 0);  // 1619 // 40320: RWKV-LM keeps lr_init
  EXPECT_EQ(shape.epoch_steps, 3360);
  for (int64_t step : {0, 50, 132}) EXPECT_EQ(learning_rate(c, shape, step), 6e-4) << step;
  // RWKV-LM saves rwkv-final when real_step == p // real_bsz - 1 in on_train_batch_end, where real_step counts
  // completed steps (Lightning has already incremented global_step): 1619 // 12 - 1 = 133.
  EXPECT_EQ(schedule_end_step(c, shape), 133);
  EXPECT_NE(schedule_end_reason(c, shape).find("1619 // 12 - 1 = 133 steps"), std::string::npos)
      << schedule_end_reason(c, shape);
  EXPECT_EQ(data::magic_final_step(1619, 12), 133u);
}

// The 133 steps read samples ii = 1 .. 133·12 = 1596, all below p: every chunk they read is distinct, and the
// chunks left unread are the last real_bsz + p % real_bsz of the permutation (at most two batches).
TEST(RwkvLmMagicPrime, TheFinalStepReadsEachChunkAtMostOnce) {
  const uint64_t p = 1619, ctx_len = 512, micro_bsz = 4, world = 3;  // real_bsz 12 over 3 ranks
  const uint64_t tokens = (p + 2) * ctx_len;
  const data::MagicPrimeSampler sampler({p, ctx_len, 0, 0}, tokens);
  const uint64_t end = data::magic_final_step(p, micro_bsz * world);
  std::set<uint64_t> chunks;
  for (uint64_t step = 0; step < end; ++step) {
    for (uint64_t rank = 0; rank < world; ++rank) {
      for (uint64_t offset : sampler.sample_offsets(step, rank, world, micro_bsz)) chunks.insert(offset / ctx_len);
    }
  }
  EXPECT_EQ(chunks.size(), end * micro_bsz * world);  // no chunk twice
  const uint64_t unread = p - chunks.size();
  EXPECT_GE(unread, micro_bsz * world);
  EXPECT_LT(unread, 2 * micro_bsz * world);
  for (uint64_t chunk : chunks) EXPECT_LT(chunk, p);
}

TEST(RwkvLmMagicPrime, ExitTokensGiveTheCosineScheduleAndEndTheRun) {
  TrainConfig c = small_magic_config(1619, 12);
  c.warmup_steps = 0;
  c.my_exit_tokens = 1619 * 512;  // what tokenize and data-info suggest
  const ScheduleShape shape = schedule_shape(c, 1);
  // RWKV-LM exits at the start of the first step whose real_step·ctx_len·real_bsz reaches my_exit_tokens.
  EXPECT_EQ(schedule_end_step(c, shape), 135);  // ceil(1619 / 12)
  for (int64_t step : {0, 60, 134}) {
    const double pc = std::min(1.0, static_cast<double>(step) * 12 / 1619.0);
    const double f = 1e-5 / 6e-4, mult = (0.5 + f / 2) + (0.5 - f / 2) * std::cos(std::numbers::pi * pc);
    EXPECT_NEAR(learning_rate(c, shape, step), 6e-4 * mult, 1e-15) << step;
  }
  EXPECT_NE(schedule_end_reason(c, shape).find("my_exit_tokens 828928"), std::string::npos);
}

TEST(RwkvLmMagicPrime, LargePrimesEndAtRwkvLmsFinalStepToo) {
  TrainConfig c = small_magic_config(324331313, 12);
  c.ctx_len = 1024;
  const ScheduleShape shape = schedule_shape(c, 8);  // 96 sequences per step
  EXPECT_EQ(shape.epoch_count, 8043);
  // Not epoch_count · epoch_steps = 3378060 (which stopped 37,536 samples early): 324331313 // 96 - 1.
  EXPECT_EQ(schedule_end_step(c, shape), 3378450);
  c.epoch_begin = 100;  // a continued run counts from its first mini-epoch
  EXPECT_EQ(schedule_end_step(c, shape), 3378450 - 100 * 420);
}

TEST(RwkvLmMagicPrime, TooSmallForTwoBatchesIsAClearError) {
  const TrainConfig c = small_magic_config(17, 12);
  const std::string message = error_of([&] { schedule_shape(c, 1); });
  EXPECT_NE(message.find("magic_prime 17 holds fewer than two global batches of 12"), std::string::npos) << message;
  TrainConfig with_exit = c;
  with_exit.my_exit_tokens = 17 * 512;
  EXPECT_EQ(schedule_end_step(with_exit, schedule_shape(with_exit, 1)), 2);
}

// RWKV-LM dataset.py: `if ii < my_random_steps: random window; else: ii -= my_random_steps; magic order`, and the
// final step moves by my_random_steps.
TEST(RwkvLmMagicPrime, RandomStepsComeFirstAndShiftTheOrder) {
  const uint64_t p = 389, ctx_len = 512, tokens = 200499, random = 30;
  const data::MagicPrimeSampler plain({p, ctx_len, 0, 0}, tokens);
  const data::MagicPrimeSampler mixed({p, ctx_len, 0, 0, random, 7}, tokens);
  const std::vector<uint64_t> first = mixed.sample_offsets(0, 0, 1, 40);  // ii = 1 .. 40
  int off_grid = 0;
  for (uint64_t j = 0; j < 40; ++j) {
    const uint64_t ii = j + 1;
    if (ii < random) {
      EXPECT_LT(first[j], tokens - ctx_len - 1);
      off_grid += first[j] % ctx_len != 0 ? 1 : 0;
    } else {
      EXPECT_EQ(first[j], data::magic_chunk(ii - random, p) * ctx_len) << ii;
    }
  }
  EXPECT_GT(off_grid, 20);  // uniform offsets, not chunk starts
  EXPECT_EQ(mixed.sample_offsets(0, 0, 1, 40), first);  // deterministic
  EXPECT_NE(plain.sample_offsets(0, 0, 1, 40), first);
  TrainConfig c = small_magic_config(1619, 12);
  c.my_random_steps = 30;
  EXPECT_EQ(schedule_end_step(c, schedule_shape(c, 1)), 133 + 30);
  c.magic_prime = 0;
  EXPECT_NE(error_of([&] { c.validate(); }).find("my_random_steps"), std::string::npos);
}

TEST(RwkvLmSchedule, WeightDecayFollowsTheLrProgress) {
  TrainConfig c;
  c.epoch_steps = 100;
  c.epoch_count = 10;
  c.warmup_steps = 0;
  c.weight_decay = 0.1;
  const ScheduleShape shape = schedule_shape(c, 1);
  EXPECT_EQ(weight_decay_at(c, shape, 500), 0.1);  // no weight_decay_final: constant
  c.weight_decay_final = 0.001;
  for (int64_t step : {0, 250, 999, 2000}) {
    const double progress = std::clamp((step + 1) / 1000.0, 0.0, 1.0);
    EXPECT_NEAR(weight_decay_at(c, shape, step), 0.1 * std::exp(std::log(0.001 / 0.1) * progress), 1e-15) << step;
  }
  c.lr_final = c.lr_init;  // constant lr and no my_exit_tokens: RWKV-LM has no progress; the decay stays put
  EXPECT_EQ(weight_decay_at(c, shape, 500), 0.1);
  c.weight_decay = 0;
  EXPECT_NE(error_of([&] { c.validate(); }).find("weight_decay_final 0.001 needs weight_decay > 0"),
            std::string::npos);
}

TEST(RwkvLmSchedule, MyExitStopsAfterThatMiniEpoch) {
  TrainConfig c;
  c.epoch_steps = 100;
  c.epoch_count = 10;
  c.my_exit = 3;
  const ScheduleShape shape = schedule_shape(c, 1);
  EXPECT_EQ(schedule_end_step(c, shape), 400);
  EXPECT_NE(schedule_end_reason(c, shape).find("my_exit"), std::string::npos);
  c.my_exit = 50;  // later than the schedule: no change
  EXPECT_EQ(schedule_end_step(c, shape), 1000);
}

// RWKV-LM's README pre-training command line, with `python train.py` replaced by `rwkv train`.
constexpr const char* kReadmeCommandLine =
    "--load_model \"\" --wandb \"\" --proj_dir out --data_file data/minipile --data_type binidx --vocab_size 50277 "
    "--ctx_len 512 --epoch_steps 5000 --epoch_count 500 --epoch_begin 0 --epoch_save 5 --micro_bsz 12 --n_layer 6 "
    "--n_embd 512 --pre_ffn 0 --head_qk 0 --lr_init 8e-4 --lr_final 1e-5 --warmup_steps 0 --beta1 0.9 --beta2 0.99 "
    "--adam_eps 1e-8 --accelerator gpu --devices 1 --precision bf16 --strategy deepspeed_stage_2 --grad_cp 0";

// A fine-tune in the form of RWKV-LM v4neo's README (Pile 169M on your own text, fits a 16 GB GPU).
constexpr const char* kFinetuneCommandLine =
    "--load_model RWKV-4-Pile-169M-20220807-8023.h5 --wandb \"\" --proj_dir out_ft --data_file data/mytext "
    "--data_type binidx --vocab_size 50277 --ctx_len 1024 --epoch_steps 1000 --epoch_count 20 --epoch_begin 0 "
    "--epoch_save 5 --micro_bsz 8 --n_layer 12 --n_embd 768 --pre_ffn 0 --head_qk 0 --lr_init 1e-5 --lr_final 1e-5 "
    "--warmup_steps 0 --beta1 0.9 --beta2 0.999 --adam_eps 1e-8 --accelerator gpu --devices 1 --precision bf16 "
    "--strategy deepspeed_stage_2_offload --grad_cp 1 --random_seed -1 --my_pile_stage 0 --weight_decay 0 "
    "--layerwise_lr 1 --ds_bucket_mb 200 --my_testing \"\" --head_size_a 64 --dim_att 0 --dim_ffn 0";

TEST(RwkvLmCommandLine, TheReadmePretrainingLineParses) {
  const ParsedConfig parsed = parse_train_config(split_command_line(kReadmeCommandLine));
  const TrainConfig& c = parsed.config;
  EXPECT_EQ(c.load_model, "");
  EXPECT_EQ(c.proj_dir, "out");
  EXPECT_EQ(c.data_file, "data/minipile");
  EXPECT_EQ(c.vocab_size, 50277);
  EXPECT_EQ(c.ctx_len, 512);
  EXPECT_EQ(c.epoch_steps, 5000);
  EXPECT_EQ(c.epoch_count, 500);
  EXPECT_EQ(c.micro_bsz, 12);
  EXPECT_EQ(c.n_layer, 6);
  EXPECT_EQ(c.n_embd, 512);
  EXPECT_EQ(c.lr_init, 8e-4);
  EXPECT_EQ(c.warmup_steps, 0);
  EXPECT_EQ(c.precision, "bf16");
  EXPECT_EQ(c.device, "cuda");  // accelerator gpu
  EXPECT_EQ(c.grad_cp, 0);
  EXPECT_EQ(parsed.devices(), 1);
  EXPECT_EQ(parsed.rwkv_lm_flags.at("strategy"), "deepspeed_stage_2");
  ASSERT_EQ(parsed.notes.size(), 1u);  // the strategy; wandb "" and the variants at 0 say nothing
  EXPECT_NE(parsed.notes[0].find("note: strategy deepspeed_stage_2: no DeepSpeed"), std::string::npos);
}

TEST(RwkvLmCommandLine, TheFinetuneLineParses) {
  const ParsedConfig parsed = parse_train_config(split_command_line(kFinetuneCommandLine));
  EXPECT_EQ(parsed.config.load_model, "RWKV-4-Pile-169M-20220807-8023.h5");
  EXPECT_EQ(parsed.config.beta2, 0.999);
  EXPECT_EQ(parsed.config.grad_cp, 1);
  EXPECT_EQ(parsed.config.seed, TrainConfig{}.seed);  // random_seed -1: RWKV-LM's default
  ASSERT_EQ(parsed.notes.size(), 1u);  // only the strategy: the other flags are at RWKV-LM's defaults
  EXPECT_NE(parsed.notes[0].find("strategy deepspeed_stage_2_offload"), std::string::npos);
}

TEST(RwkvLmCommandLine, ModelVariantsAreRefusedByName) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--pre_ffn", "1"}, "pre_ffn 1 is refused: pre_ffn"},
      {{"--head_qk", "64"}, "head_qk 64 is refused"},
      {{"--tiny_att_dim", "256"}, "tiny_att_dim 256 is refused"},
      {{"--my_pos_emb", "4"}, "my_pos_emb 4 is refused"},
      {{"--my_qa_mask", "1"}, "my_qa_mask 1 is refused"},
      {{"--my_img_size", "64"}, "my_img_size 64 is refused: image models"},
      {{"--my_testing", "g"}, "my_testing g is refused"},
      {{"--my_att_shift", "0"}, "my_att_shift 0 is refused"},
      {{"--load_partial", "1"}, "load_partial 1 is refused"},
      {{"--precision", "fp16"}, "precision fp16 is refused: fp16 mixed precision needs loss scaling"},
      {{"--accelerator", "tpu"}, "accelerator must be gpu, cuda, cpu or auto, got 'tpu'"},
      {{"--devices", "0"}, "devices must be a positive integer"},
      {{"--random_seed", "abc"}, "random_seed expects an integer, got 'abc'"},
      {{"--accelerator", "cpu", "--device", "cuda"}, "accelerator cpu contradicts device = cuda"},
      {{"--dropout", "1"}, "dropout must be in [0, 1), got 1"},
  };
  for (const auto& [args, expected] : refused) {
    const std::string message = error_of([&] { parse_train_config(args); });
    EXPECT_NE(message.find(expected), std::string::npos) << args.front() << ": " << message;
  }
  // In a config file too, with file and line for unknown keys.
  const std::string typo = error_of([] { parse_train_config({"--stratgy", "ddp"}); });
  EXPECT_NE(typo.find("did you mean 'strategy'"), std::string::npos) << typo;
}

TEST(RwkvLmCommandLine, MappedValues) {
  EXPECT_EQ(parse_train_config({"--precision", "16"}).config.precision, "bf16");  // RWKV-LM: "16" -> bf16
  EXPECT_EQ(parse_train_config({"--precision", "32"}).config.precision, "tf32");  // precision 32, TF32 on
  EXPECT_EQ(parse_train_config({"--precision", "fp32"}).config.precision, "fp32");
  EXPECT_EQ(parse_train_config({"--random_seed", "7"}).config.seed, 7u);
  EXPECT_EQ(parse_train_config({"--max_steps", "-1"}).config.max_steps, 0);  // Lightning's "no limit"
  EXPECT_EQ(parse_train_config({"--accelerator", "cpu"}).config.device, "cpu");
  const ParsedConfig noted = parse_train_config({"--gradient_clip_val", "1.0", "--num_nodes", "1", "--wandb", "x"});
  EXPECT_EQ(noted.notes.size(), 2u);  // gradient_clip_val and wandb; num_nodes 1 is a plain run
  EXPECT_EQ(noted.num_nodes(), 1);
  const ParsedConfig help = parse_train_config({"--help"});
  for (const char* expected : {"RWKV-LM command lines run unchanged", "pre_ffn: refused unless 0", "strategy: ",
                               "devices: ", "precision: fp32, tf32, bf16; RWKV-LM's 32 -> tf32"}) {
    EXPECT_NE(help.help_text.find(expected), std::string::npos) << expected;
  }
}

}  // namespace
}  // namespace rwkv
