// Kernel lab: one Adam step (spec §4.1, DeepSpeed FusedAdam; AdamW's decay on the matrices) over the parameter list
// of RWKV-4-Pile-169M (L12-D768, vocab 50277, spec §1.8: 169,342,464 parameters in 222 tensors), with the
// layerwise learning rates of spec §4.2 (time_decay 2x, time_first 3x).
//   reference            double precision on the CPU
//   v1 per tensor        cuda_kernels::adam_step, one launch per tensor
//   v2 multi-tensor      cuda_kernels::multi_tensor_adam_step, one launch over every tensor (the trainer's step)
// Checks: v1 and v2 bit-identical (param, exp_avg, exp_avg_sq), both against the reference (max |diff| /
// max |reference| per buffer <= 1e-6), and each run twice bit-identical. Timing against the floor: p, g, m, v
// read and p, m, v written once. Usage: lab_adam [--layers 12] [--C 768] [--V 50277] [--repeats 20]
#include <cstring>
#include <exception>

#include "kernels/cuda/kernels.h"
#include "labs/lab.cuh"

namespace {

namespace ck = rwkv::cuda_kernels;

struct Flags {
  int64_t layers = 12, channels = 768, vocab = 50277, repeats = 20;
};

// One parameter tensor: its size, its place in the flat buffers, its learning-rate multiplier and weight decay.
struct Tensor {
  std::string name;
  int64_t n, offset = 0;
  float lr_scale = 1.0f;
  bool is_matrix = false;
};

// The state-dict order and shapes of spec §1.8 with A = C and F = 4C.
std::vector<Tensor> parameter_list(int64_t layers, int64_t C, int64_t V) {
  std::vector<Tensor> list;
  const auto add = [&](const std::string& name, int64_t n, float lr_scale = 1.0f, bool is_matrix = false) {
    list.push_back({name, n, 0, lr_scale, is_matrix});
  };
  add("emb.weight", V * C, 1.0f, true);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    for (const char* name : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"}) add(p + name, C);
    if (l == 0) {
      add(p + "ln0.weight", C);
      add(p + "ln0.bias", C);
    }
    add(p + "att.time_decay", C, 2.0f);
    add(p + "att.time_first", C, 3.0f);
    for (const char* name : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r"}) add(p + name, C);
    for (const char* name : {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.output.weight"}) {
      add(p + name, C * C, 1.0f, true);
    }
    add(p + "ffn.time_mix_k", C);
    add(p + "ffn.time_mix_r", C);
    add(p + "ffn.key.weight", 4 * C * C, 1.0f, true);
    add(p + "ffn.receptance.weight", C * C, 1.0f, true);
    add(p + "ffn.value.weight", 4 * C * C, 1.0f, true);
  }
  add("ln_out.weight", C);
  add("ln_out.bias", C);
  add("head.weight", V * C, 1.0f, true);
  int64_t offset = 0;
  for (Tensor& t : list) {
    t.offset = offset;
    offset += (t.n + 3) / 4 * 4;  // every tensor starts 16-byte aligned, as its own allocation would
  }
  return list;
}

// The step's hyper-parameters: spec §4.1 defaults at step 10, with AdamW decay on the matrices to cover that term.
struct Hyper {
  float lr = 6e-4f, beta1 = 0.9f, beta2 = 0.99f, eps = 1e-8f, weight_decay = 0.01f;
  int step = 10;
  float bias_correction1() const { return 1.0f - std::pow(beta1, static_cast<float>(step)); }
  float bias_correction2() const { return 1.0f - std::pow(beta2, static_cast<float>(step)); }
};

struct State {
  std::vector<float> param, exp_avg, exp_avg_sq;
};

State reference(const std::vector<Tensor>& tensors, const Hyper& h, const State& in, const std::vector<float>& grad) {
  State out = in;
  const double b1 = h.beta1, b2 = h.beta2, bc1 = h.bias_correction1(), bc2 = h.bias_correction2();
  for (const Tensor& t : tensors) {
    const double lr = static_cast<double>(h.lr) * t.lr_scale, wd = t.is_matrix ? h.weight_decay : 0.0f;
    for (int64_t i = t.offset; i < t.offset + t.n; ++i) {
      const double g = grad[i];
      const double m = b1 * in.exp_avg[i] + (1 - b1) * g, v = b2 * in.exp_avg_sq[i] + (1 - b2) * g * g;
      out.exp_avg[i] = static_cast<float>(m);
      out.exp_avg_sq[i] = static_cast<float>(v);
      const double update = (m / bc1) / (std::sqrt(v / bc2) + h.eps) + wd * in.param[i];
      out.param[i] = static_cast<float>(in.param[i] - lr * update);
    }
  }
  return out;
}

struct DeviceState {
  lab::Buffer<float> param, exp_avg, exp_avg_sq;
  explicit DeviceState(const State& s) : param(s.param), exp_avg(s.exp_avg), exp_avg_sq(s.exp_avg_sq) {}
  State download() const { return {param.download(), exp_avg.download(), exp_avg_sq.download()}; }
  void upload(const State& s) {
    param.upload(s.param);
    exp_avg.upload(s.exp_avg);
    exp_avg_sq.upload(s.exp_avg_sq);
  }
};

enum class Version { v1_per_tensor, v2_multi_tensor };
const char* version_name(Version version) {
  return version == Version::v1_per_tensor ? "v1 per tensor (one launch each)" : "v2 multi-tensor (one launch)";
}

void step(Version version, const std::vector<Tensor>& tensors, const Hyper& h, DeviceState& d, const float* grad) {
  if (version == Version::v1_per_tensor) {
    for (const Tensor& t : tensors) {
      ck::adam_step(d.param.data + t.offset, grad + t.offset, d.exp_avg.data + t.offset, d.exp_avg_sq.data + t.offset,
                    t.n, h.lr * t.lr_scale, h.beta1, h.beta2, h.eps, t.is_matrix ? h.weight_decay : 0.0f,
                    h.bias_correction1(), h.bias_correction2());
    }
    return;
  }
  std::vector<ck::AdamTensorArgs> args;
  for (const Tensor& t : tensors) {
    args.push_back({d.param.data + t.offset, grad + t.offset, d.exp_avg.data + t.offset,
                    d.exp_avg_sq.data + t.offset, t.n, h.lr * t.lr_scale, t.is_matrix ? h.weight_decay : 0.0f});
  }
  ck::multi_tensor_adam_step(args.data(), static_cast<int64_t>(args.size()), h.beta1, h.beta2, h.eps,
                             h.bias_correction1(), h.bias_correction2(), false, 1.0f);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool check_same_bits(const std::string& what, const State& a, const State& b) {
  const bool same = same_bits(a.param, b.param) && same_bits(a.exp_avg, b.exp_avg) &&
                    same_bits(a.exp_avg_sq, b.exp_avg_sq);
  std::printf("  check %-28s %s  param, exp_avg, exp_avg_sq %s\n", what.c_str(), same ? "ok  " : "FAIL",
              same ? "bit-identical" : "differ");
  return same;
}

// Only the elements of the tensors (the alignment padding between them is never touched).
bool check_close(const std::string& what, const std::vector<Tensor>& tensors, const std::vector<float>& got,
                 const std::vector<float>& want, double tolerance) {
  std::vector<float> got_elements, want_elements;
  for (const Tensor& t : tensors) {
    got_elements.insert(got_elements.end(), got.begin() + t.offset, got.begin() + t.offset + t.n);
    want_elements.insert(want_elements.end(), want.begin() + t.offset, want.begin() + t.offset + t.n);
  }
  double scale = 0;
  for (const float x : want_elements) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  return lab::compare(what.c_str(), got_elements, want_elements, tolerance * (scale > 0 ? scale : 1.0), 0.0);
}

bool run(const Flags& flags) {
  const std::vector<Tensor> tensors = parameter_list(flags.layers, flags.channels, flags.vocab);
  int64_t parameters = 0;
  for (const Tensor& t : tensors) parameters += t.n;
  const auto total = static_cast<size_t>(tensors.back().offset + (tensors.back().n + 3) / 4 * 4);
  std::printf("L%lld-D%lld vocab %lld: %zu tensors, %lld parameters\n", static_cast<long long>(flags.layers),
              static_cast<long long>(flags.channels), static_cast<long long>(flags.vocab), tensors.size(),
              static_cast<long long>(parameters));
  if (flags.layers == 12 && flags.channels == 768 && flags.vocab == 50277 && parameters != 169342464) {
    std::printf("lab_adam: FAIL: the parameter list does not add up to the spec's 169,342,464\n");
    return 1;
  }

  // A mid-training state: weights of init scale, small gradients, moments of matching size (v > 0).
  const Hyper h;
  const State initial{lab::random_vector(total, -0.5f, 0.5f, 21), lab::random_vector(total, -1e-3f, 1e-3f, 22),
                      lab::random_vector(total, 1e-8f, 1e-6f, 23)};
  const std::vector<float> grad_host = lab::random_vector(total, -2e-3f, 2e-3f, 24);
  std::printf("reference in double on the CPU...\n");
  const State want = reference(tensors, h, initial, grad_host);

  const lab::Buffer<float> grad(grad_host);
  DeviceState d(initial);
  const Version versions[] = {Version::v1_per_tensor, Version::v2_multi_tensor};
  std::vector<State> results;
  bool ok = true;
  for (const Version version : versions) {
    std::printf("%s:\n", version_name(version));
    d.upload(initial);
    step(version, tensors, h, d, grad.data);
    results.push_back(d.download());
    d.upload(initial);
    step(version, tensors, h, d, grad.data);
    ok &= check_same_bits("two runs", results.back(), d.download());
    ok &= check_close("param", tensors, results.back().param, want.param, 1e-6);
    ok &= check_close("exp_avg", tensors, results.back().exp_avg, want.exp_avg, 1e-6);
    ok &= check_close("exp_avg_sq", tensors, results.back().exp_avg_sq, want.exp_avg_sq, 1e-6);
  }
  std::printf("v1 against v2:\n");
  ok &= check_same_bits("v1 == v2", results[0], results[1]);

  // Floor: p, g, m, v read and p, m, v written once.
  const double bytes = 7.0 * sizeof(float) * static_cast<double>(parameters);
  const int repeats = static_cast<int>(flags.repeats);
  std::printf("\ntiming one step over %lld parameters (L2 flushed, median of %d):\n",
              static_cast<long long>(parameters), repeats);
  for (const Version version : versions) {
    lab::report(version_name(version), lab::time_kernel([&] { step(version, tensors, h, d, grad.data); }, repeats),
                bytes);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  lab::parse_int_flags(argc, argv, "lab_adam", {{"--layers", &flags.layers}, {"--C", &flags.channels},
                                                {"--V", &flags.vocab}, {"--repeats", &flags.repeats}});
  return lab::run_lab("lab_adam", [&] { return run(flags); });
}
