// The RWKV-4 language model (spec §1) on the autograd, with the official parameter names, shapes and order
// (§1.8). forward() is the parallel ("GPT") mode; given a state it continues a sequence chunk by chunk, and a
// chunk of one token is exactly the RNN step of §8.3.
#pragma once

#include <memory>
#include <vector>

#include "autograd/nn/module.h"
#include "kernels/dropout.h"
#include "train/model/model_config.h"

namespace rwkv {

// The recurrent state of one layer for a batch of sequences. Variables, so gradients can flow through the state
// when a long sequence is trained in chunks.
struct LayerState {
  ag::Variable att_previous;  // [B, C]: LN1 output of the last token (token shift of the time-mix)
  ag::Variable wkv;           // [B, 3, A]: (aa, bb, pp) of the WKV recurrence
  ag::Variable ffn_previous;  // [B, C]: LN2 output of the last token (token shift of the channel-mix)
};
using ModelState = std::vector<LayerState>;

// Packs a state into spec §8.2's layout, [B, 5L, C] f32 (5i+0 ffn previous, 5i+1 att previous, 5i+2 aa,
// 5i+3 bb, 5i+4 pp; requires dim_att == n_embd), and back. zero_state() is the start of every sequence.
Tensor pack_state(const ModelState& state);
ModelState unpack_state(const Tensor& packed, int64_t n_layer);
ModelState zero_state(const ModelConfig& config, int64_t batch);

class TimeMix : public ag::nn::Module {
public:
  TimeMix(int64_t n_embd, int64_t dim_att);
  // z: LN1 output [B, T, C]. Updates `state` (att_previous, wkv) when given.
  ag::Variable forward(const ag::Variable& z, LayerState* state) const;

  ag::Variable time_decay, time_first, time_mix_k, time_mix_v, time_mix_r;
  std::shared_ptr<ag::nn::Linear> key, value, receptance, output;
};

class ChannelMix : public ag::nn::Module {
public:
  ChannelMix(int64_t n_embd, int64_t dim_ffn);
  ag::Variable forward(const ag::Variable& z, LayerState* state) const;

  ag::Variable time_mix_k, time_mix_r;
  std::shared_ptr<ag::nn::Linear> key, receptance, value;
};

class Block : public ag::nn::Module {
public:
  Block(const ModelConfig& config, int64_t layer);
  // With `dropout` (training with RWKV-LM's --dropout): x = drop(x + att(ln1(x))); x = drop(x + ffn(ln2(x))).
  ag::Variable forward(const ag::Variable& x, LayerState* state, const ops::DropoutKey* dropout = nullptr) const;

  std::shared_ptr<ag::nn::LayerNorm> ln1, ln2, ln0;  // ln0 only in block 0
  std::shared_ptr<TimeMix> att;
  std::shared_ptr<ChannelMix> ffn;

private:
  int64_t layer_;
};

class Rwkv4 : public ag::nn::Module {
public:
  explicit Rwkv4(const ModelConfig& config);  // parameters are zeros/ones: call initialize_rwkv4() or load

  // idx: [B, T] token ids (i32/i64) -> logits [B, T, V]. With `state`, starts from it and leaves the final
  // state in it; without, every sequence starts from the zero state (training).
  ag::Variable forward(const Tensor& idx, ModelState* state = nullptr) const;
  // The ln_out output [B, T, C] the head reads (forward = head(features)).
  // `dropout` (training only): the key of this batch; the embedding output and every residual sum are dropped
  // as in RWKV-LM's model.py when dropout > 0, each site with its own Philox key (ops::dropout_site_seed).
  ag::Variable features(const Tensor& idx, ModelState* state = nullptr, const ops::DropoutKey* dropout = nullptr) const;
  // Training loss: mean cross-entropy with L2Wrap of the logits against targets [B, T], with the head fused into
  // the loss (ag::linear_cross_entropy): no [B, T, V] logits are kept, which dominate memory at the Pile's vocab.
  ag::Variable loss(const Tensor& idx, const Tensor& targets, const ops::DropoutKey* dropout = nullptr) const;
  // Runs blocks with activation checkpointing (spec's grad_cp): recomputes each block in backward.
  void set_gradient_checkpointing(bool enabled) { checkpoint_blocks_ = enabled; }
  // precision = bf16: the embedding's output is cast to bf16 and every layer after it computes on bf16
  // activations (bf16 GEMM operands with fp32 accumulation, fp32 layernorm statistics, WKV and loss) while the
  // parameters stay fp32 masters. f32 (the default) leaves the activations in the parameters' dtype.
  void set_activation_dtype(DType dtype);
  DType activation_dtype() const { return activation_dtype_; }

  const ModelConfig& config() const { return config_; }
  const std::vector<std::shared_ptr<Block>>& blocks() const { return blocks_; }
  ag::Variable named(const std::string& name) const;  // a parameter by its official name

private:
  ModelConfig config_;
  bool checkpoint_blocks_ = false;
  DType activation_dtype_ = DType::f32;
  std::shared_ptr<ag::nn::Embedding> emb_;
  std::vector<std::shared_ptr<Block>> blocks_;
  std::shared_ptr<ag::nn::LayerNorm> ln_out_;
  std::shared_ptr<ag::nn::Linear> head_;
};

// Mean cross-entropy of logits [B, T, V] against targets [B, T] with L2Wrap (spec §1.7) attached.
ag::Variable language_model_loss(const ag::Variable& logits, const Tensor& targets);

}  // namespace rwkv
