#include "train/model/model.h"

#include <optional>

#include "autograd/checkpoint.h"
#include "autograd/dropout.h"
#include "autograd/functions.h"
#include "autograd/rwkv_fused.h"

namespace rwkv {

using ag::Variable;

namespace {

// The token shift and the mixes z·μ + ẑ·(1 − μ) of spec §1.3 in one fused op. The mixes are stored [1, 1, C]
// (the official shapes); the op takes them as [C]. A carried-over token of another dtype (an f32 state fed to a
// bf16 model) is converted to the activations' dtype.
std::vector<Variable> token_shift_mixes(const Variable& z, const Variable& previous,
                                        const std::vector<Variable>& mixes) {
  std::vector<Variable> flat;
  for (const Variable& mu : mixes) flat.push_back(ag::reshape(mu, {mu.data().numel()}));
  Variable carried = previous;
  if (carried.defined() && carried.data().dtype() != z.data().dtype()) carried = ag::cast(carried, z.data().dtype());
  return ag::time_mix(z, carried, flat);
}

Variable last_token(const Variable& z) {
  const int64_t time = z.size(1);
  return ag::reshape(ag::slice(z, 1, time - 1, time), {z.size(0), z.size(2)});
}

}  // namespace

TimeMix::TimeMix(int64_t n_embd, int64_t dim_att)
    : time_decay(register_parameter("time_decay", Tensor::zeros({dim_att}))),
      time_first(register_parameter("time_first", Tensor::zeros({dim_att}))),
      time_mix_k(register_parameter("time_mix_k", Tensor::zeros({1, 1, n_embd}))),
      time_mix_v(register_parameter("time_mix_v", Tensor::zeros({1, 1, n_embd}))),
      time_mix_r(register_parameter("time_mix_r", Tensor::zeros({1, 1, n_embd}))),
      key(register_module("key", std::make_shared<ag::nn::Linear>(n_embd, dim_att))),
      value(register_module("value", std::make_shared<ag::nn::Linear>(n_embd, dim_att))),
      receptance(register_module("receptance", std::make_shared<ag::nn::Linear>(n_embd, dim_att))),
      output(register_module("output", std::make_shared<ag::nn::Linear>(dim_att, n_embd))) {}

Variable TimeMix::forward(const Variable& z, LayerState* state) const {
  const std::vector<Variable> mixed =
      token_shift_mixes(z, state ? state->att_previous : Variable(), {time_mix_k, time_mix_v, time_mix_r});
  const Variable k = key->forward(mixed[0]);
  const Variable v = value->forward(mixed[1]);
  const Variable r = receptance->forward(mixed[2]);
  const ag::WkvResult wkv = ag::wkv(time_decay, time_first, k, v, state ? state->wkv : Variable());
  if (state) {
    state->att_previous = last_token(z);
    state->wkv = wkv.state;
  }
  return output->forward(ag::sigmoid_mul(r, wkv.y));
}

ChannelMix::ChannelMix(int64_t n_embd, int64_t dim_ffn)
    : time_mix_k(register_parameter("time_mix_k", Tensor::zeros({1, 1, n_embd}))),
      time_mix_r(register_parameter("time_mix_r", Tensor::zeros({1, 1, n_embd}))),
      key(register_module("key", std::make_shared<ag::nn::Linear>(n_embd, dim_ffn))),
      receptance(register_module("receptance", std::make_shared<ag::nn::Linear>(n_embd, n_embd))),
      value(register_module("value", std::make_shared<ag::nn::Linear>(dim_ffn, n_embd))) {}

Variable ChannelMix::forward(const Variable& z, LayerState* state) const {
  const std::vector<Variable> mixed =
      token_shift_mixes(z, state ? state->ffn_previous : Variable(), {time_mix_k, time_mix_r});
  const Variable k = ag::relu_square(key->forward(mixed[0]));
  const Variable r = receptance->forward(mixed[1]);
  if (state) state->ffn_previous = last_token(z);
  return ag::sigmoid_mul(r, value->forward(k));
}

Block::Block(const ModelConfig& config, int64_t layer)
    : ln1(register_module("ln1", std::make_shared<ag::nn::LayerNorm>(config.n_embd))),
      ln2(register_module("ln2", std::make_shared<ag::nn::LayerNorm>(config.n_embd))),
      ln0(layer == 0 ? register_module("ln0", std::make_shared<ag::nn::LayerNorm>(config.n_embd)) : nullptr),
      att(register_module("att", std::make_shared<TimeMix>(config.n_embd, config.dim_att))),
      ffn(register_module("ffn", std::make_shared<ChannelMix>(config.n_embd, config.dim_ffn))),
      layer_(layer) {}

namespace {
ops::DropoutKey at_site(const ops::DropoutKey& batch, int64_t layer, int64_t place) {
  ops::DropoutKey key = batch;
  key.seed = ops::dropout_site_seed(batch.seed, layer, place);
  return key;
}
}  // namespace

Variable Block::forward(const Variable& input, LayerState* state, const ops::DropoutKey* dropout) const {
  const Variable x = ln0 ? ln0->forward(input) : input;
  if (dropout && dropout->probability > 0) {  // RWKV-LM's Block.forward with args.dropout > 0 (no fused residual)
    const Variable after_att = ag::keyed_dropout(ag::add(x, att->forward(ln1->forward(x), state)),
                                                 at_site(*dropout, layer_, 0));
    return ag::keyed_dropout(ag::add(after_att, ffn->forward(ln2->forward(after_att), state)),
                             at_site(*dropout, layer_, 1));
  }
  // x + att(ln1(x)) and ln2 of that sum in one fused pass.
  const ag::nn::LayerNorm::Output after_att = ln2->forward_with_residual(x, att->forward(ln1->forward(x), state));
  return ag::add(after_att.sum, ffn->forward(after_att.y, state));
}

Rwkv4::Rwkv4(const ModelConfig& config) : config_(config.resolved()) {
  emb_ = register_module("emb", std::make_shared<ag::nn::Embedding>(config_.vocab_size, config_.n_embd));
  auto blocks = register_module("blocks", std::make_shared<ag::nn::ModuleList>());
  for (int64_t layer = 0; layer < config_.n_layer; ++layer) {
    blocks_.push_back(blocks->append(std::make_shared<Block>(config_, layer)));
  }
  ln_out_ = register_module("ln_out", std::make_shared<ag::nn::LayerNorm>(config_.n_embd));
  head_ = register_module("head", std::make_shared<ag::nn::Linear>(config_.n_embd, config_.vocab_size));
}

Variable Rwkv4::forward(const Tensor& idx, ModelState* state) const {
  const Variable logits = head_->forward(features(idx, state));
  return logits.data().dtype() == DType::bf16 ? ag::cast(logits, DType::f32) : logits;
}

void Rwkv4::set_activation_dtype(DType dtype) {
  RWKV_CHECK(dtype == DType::f32 || dtype == DType::bf16, "model: activations must be f32 (the parameters' dtype) ",
             "or bf16, got ", dtype_name(dtype));
  activation_dtype_ = dtype;
}

Variable Rwkv4::loss(const Tensor& idx, const Tensor& targets, const ops::DropoutKey* dropout) const {
  return ag::linear_cross_entropy(features(idx, nullptr, dropout), head_->weight(), targets);
}

Variable Rwkv4::features(const Tensor& idx, ModelState* state, const ops::DropoutKey* dropout) const {
  RWKV_CHECK(idx.dim() == 2, "model: token ids must be [batch, time], got ", idx.describe());
  RWKV_CHECK(!state || static_cast<int64_t>(state->size()) == config_.n_layer, "model: a state for ",
             state ? state->size() : 0, " layers given to a ", config_.n_layer, "-layer model");
  Variable x = emb_->forward(idx);
  // Mixed precision starts here: the fp32 embedding rows become bf16 activations (its gradient returns in fp32).
  if (activation_dtype_ == DType::bf16 && x.data().dtype() != DType::bf16) x = ag::cast(x, DType::bf16);
  if (dropout && dropout->probability > 0) x = ag::keyed_dropout(x, at_site(*dropout, -1, 0));  // RWKV-LM's drop0
  for (size_t layer = 0; layer < blocks_.size(); ++layer) {
    const Block& block = *blocks_[layer];
    LayerState* layer_state = state ? &(*state)[layer] : nullptr;
    if (checkpoint_blocks_ && !layer_state) {
      // The recompute in backward draws the same mask: the key is kept by value.
      const std::optional<ops::DropoutKey> kept = dropout ? std::optional(*dropout) : std::nullopt;
      x = ag::checkpoint([&block, kept](const std::vector<Variable>& in) {
            return std::vector<Variable>{block.forward(in[0], nullptr, kept ? &*kept : nullptr)};
          }, {x})[0];
    } else {
      x = block.forward(x, layer_state, dropout);
    }
  }
  return ln_out_->forward(x);
}

Variable Rwkv4::named(const std::string& name) const {
  for (const auto& [parameter_name, parameter] : named_parameters()) {
    if (parameter_name == name) return parameter;
  }
  RWKV_FAIL("model: no parameter named '", name, "'");
}

Variable language_model_loss(const Variable& logits, const Tensor& targets) {
  return ag::l2wrap(ag::cross_entropy(logits, targets), logits);
}

ModelState zero_state(const ModelConfig& config_in, int64_t batch) {
  const ModelConfig config = config_in.resolved();
  ModelState state(static_cast<size_t>(config.n_layer));
  for (LayerState& layer : state) {
    layer.att_previous = Variable(Tensor::zeros({batch, config.n_embd}));
    layer.ffn_previous = Variable(Tensor::zeros({batch, config.n_embd}));
    Tensor wkv = Tensor::zeros({batch, 3, config.dim_att});
    wkv.slice(1, 2, 3).fill_(-1e38);  // pp: the running max starts at "minus infinity"
    layer.wkv = Variable(wkv);
  }
  return state;
}

Tensor pack_state(const ModelState& state) {
  RWKV_CHECK(!state.empty(), "pack_state: empty state");
  const int64_t batch = state[0].att_previous.size(0), channels = state[0].att_previous.size(1);
  const int64_t layers = static_cast<int64_t>(state.size());
  Tensor packed = Tensor::empty({batch, 5 * layers, channels});
  for (int64_t i = 0; i < layers; ++i) {
    const LayerState& layer = state[static_cast<size_t>(i)];
    RWKV_CHECK(layer.wkv.size(2) == channels, "pack_state: the §8.2 state layout needs dim_att == n_embd (got ",
               layer.wkv.size(2), " and ", channels, ")");
    packed.slice(1, 5 * i + 0, 5 * i + 1).copy_(layer.ffn_previous.data().to(DType::f32).unsqueeze(1));
    packed.slice(1, 5 * i + 1, 5 * i + 2).copy_(layer.att_previous.data().to(DType::f32).unsqueeze(1));
    packed.slice(1, 5 * i + 2, 5 * i + 5).copy_(layer.wkv.data().to(DType::f32));
  }
  return packed;
}

ModelState unpack_state(const Tensor& packed, int64_t n_layer) {
  RWKV_CHECK(packed.dim() == 3 && packed.size(1) == 5 * n_layer, "unpack_state: expected [batch, ", 5 * n_layer,
             ", C] for ", n_layer, " layers, got ", packed.describe());
  ModelState state(static_cast<size_t>(n_layer));
  for (int64_t i = 0; i < n_layer; ++i) {
    LayerState& layer = state[static_cast<size_t>(i)];
    layer.ffn_previous = Variable(packed.slice(1, 5 * i + 0, 5 * i + 1).squeeze(1).contiguous());
    layer.att_previous = Variable(packed.slice(1, 5 * i + 1, 5 * i + 2).squeeze(1).contiguous());
    layer.wkv = Variable(packed.slice(1, 5 * i + 2, 5 * i + 5).contiguous());
  }
  return state;
}

}  // namespace rwkv
