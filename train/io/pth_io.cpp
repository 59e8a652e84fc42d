#include "train/io/pth_io.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <span>

#include "core/bf16.h"
#include "train/io/hdf5.h"
#include "train/io/pth_pickle.h"

namespace rwkv {

namespace {

// torch.save's record names: every entry lives under one top-level folder, "archive" in current torch.
constexpr const char* kArchiveName = "archive";
constexpr size_t kMaxListedProblems = 20;

[[noreturn]] void report_problems(const std::string& header, const std::vector<std::string>& problems) {
  std::string message = header + " (" + std::to_string(problems.size()) + " problem" +
                        (problems.size() == 1 ? "" : "s") + "):";
  for (size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i) message += "\n  " + problems[i];
  if (problems.size() > kMaxListedProblems) {
    message += "\n  ... and " + std::to_string(problems.size() - kMaxListedProblems) + " more";
  }
  throw Error(message);
}

const char* storage_type_of(PthDType dtype) {
  switch (dtype) {
    case PthDType::f32: return "FloatStorage";
    case PthDType::bf16: return "BFloat16Storage";
    case PthDType::f16: return "HalfStorage";
  }
  return "?";
}

size_t element_size(PthDType dtype) { return dtype == PthDType::f32 ? 4 : 2; }

// As torch computes them (a size-0 dimension counts as 1).
Shape torch_contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * std::max<int64_t>(shape[i], 1);
  return strides;
}

// The element types a .pth storage may hold for model weights.
enum class StorageKind { f32, bf16, f16, f64 };

bool storage_kind(const std::string& type, StorageKind& kind, size_t& bytes) {
  static const std::map<std::string, std::pair<StorageKind, size_t>> kinds{
      {"FloatStorage", {StorageKind::f32, 4}},
      {"BFloat16Storage", {StorageKind::bf16, 2}},
      {"HalfStorage", {StorageKind::f16, 2}},
      {"DoubleStorage", {StorageKind::f64, 8}},
  };
  const auto it = kinds.find(type);
  if (it == kinds.end()) return false;
  kind = it->second.first;
  bytes = it->second.second;
  return true;
}

float load_element(const uint8_t* p, StorageKind kind) {
  switch (kind) {
    case StorageKind::f32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case StorageKind::bf16: {
      BFloat16 v;
      std::memcpy(&v.bits, p, 2);
      return bf16_to_float(v);
    }
    case StorageKind::f16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return half_to_float(v);
    }
    case StorageKind::f64: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);
    }
  }
  return 0;
}

// Legacy torch files (before 1.6, or _use_new_zipfile_serialization=False) are a bare pickle stream or a tar.
void refuse_legacy_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RWKV_CHECK(in.good(), path, ": cannot open");
  char head[512] = {};
  in.read(head, sizeof(head));
  const std::streamsize got = in.gcount();
  const bool pickle = got >= 2 && static_cast<uint8_t>(head[0]) == 0x80 && static_cast<uint8_t>(head[1]) <= 5;
  const bool tar = got >= 262 && std::memcmp(head + 257, "ustar", 5) == 0;
  RWKV_CHECK(!pickle && !tar, path, ": this is torch's legacy (pre-1.6, non-zip) serialization format, which is ",
             "not supported; convert it with: python3 -c \"import torch; torch.save(torch.load('", path,
             "', map_location='cpu'), 'converted.pth')\"");
}

}  // namespace

PthDType parse_pth_dtype(const std::string& name) {
  if (name == "fp32" || name == "f32" || name == "float32") return PthDType::f32;
  if (name == "bf16" || name == "bfloat16") return PthDType::bf16;
  if (name == "fp16" || name == "f16" || name == "float16") return PthDType::f16;
  RWKV_FAIL("--dtype: expected bf16, fp16 or fp32, got '", name, "'");
}

const char* pth_dtype_name(PthDType dtype) {
  switch (dtype) {
    case PthDType::f32: return "fp32";
    case PthDType::bf16: return "bf16";
    case PthDType::f16: return "fp16";
  }
  return "?";
}

uint16_t float_to_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) {  // infinity, or NaN (kept quiet, top payload bits kept)
    return sign | (magnitude > 0x7F800000u ? static_cast<uint16_t>(0x7E00u | ((magnitude >> 13) & 0x3FFu)) : 0x7C00u);
  }
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds (to even) past 65504
  if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal half; adding 0.5 makes the FPU round at 2^-24
    float shifted;
    std::memcpy(&shifted, &magnitude, 4);
    shifted += 0.5f;
    uint32_t result;
    std::memcpy(&result, &shifted, 4);
    return sign | static_cast<uint16_t>(result - 0x3F000000u);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even.
  magnitude += 0xC8000FFFu + ((magnitude >> 13) & 1u);
  return sign | static_cast<uint16_t>(magnitude >> 13);
}

float half_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1Fu, mantissa = half & 0x3FFu;
  uint32_t bits;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // exact
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

PthExportResult export_pth(const std::string& h5_path, const std::string& pth_path, PthDType dtype,
                           const pth::ZipWriterOptions& zip_options) {
  const hdf5::File file = hdf5::File::open_read(h5_path);
  PthExportResult result;
  result.dims = read_model_dims(file);
  const auto expected = rwkv4_parameter_shapes(result.dims);
  const hdf5::Group model = file.open_group(kModelGroupName);

  // Check every name and shape before writing anything.
  std::vector<std::string> problems;
  std::set<std::string> wanted;
  for (const auto& [name, shape] : expected) {
    wanted.insert(name);
    const std::string where = h5_path + ": " + model.object_path(name) + ": ";
    if (!model.contains_dataset(name)) {
      problems.push_back(where + "missing from the file");
    } else if (const Shape stored = model.dataset_shape(name); stored != shape) {
      problems.push_back(where + "shape " + shape_str(stored) + " is not the expected " + shape_str(shape));
    }
  }
  for (const std::string& name : model.members()) {
    if (!wanted.contains(name)) problems.push_back(h5_path + ": " + model.object_path(name) + ": unexpected tensor");
  }
  if (!problems.empty()) report_problems(h5_path + ": /model is not an RWKV-4 " + result.dims.describe(), problems);

  const std::string prefix = std::string(kArchiveName) + "/";
  std::vector<pth::TensorRecord> records;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [name, shape] = expected[i];
    pth::TensorRecord record;
    record.name = name;
    record.storage = {storage_type_of(dtype), std::to_string(i), "cpu", shape_numel(shape)};
    record.size = shape;
    record.stride = torch_contiguous_strides(shape);
    records.push_back(std::move(record));
  }
  pth::ZipWriter zip(pth_path, zip_options);
  const std::vector<uint8_t> pickle = pth::write_state_dict_pickle(records);
  zip.add(prefix + "data.pkl", pickle);
  const std::string byteorder = "little";
  zip.add(prefix + "byteorder", std::span(reinterpret_cast<const uint8_t*>(byteorder.data()), byteorder.size()));
  std::vector<uint8_t> converted;
  for (size_t i = 0; i < expected.size(); ++i) {
    const Tensor values = model.read_tensor(expected[i].first, DType::f32);
    const float* in = values.data<float>();
    const int64_t count = values.numel();
    if (dtype == PthDType::f32) {  // already the bytes to store
      zip.add(prefix + "data/" + std::to_string(i),
              std::span(reinterpret_cast<const uint8_t*>(in), static_cast<size_t>(count) * 4));
      continue;
    }
    converted.resize(static_cast<size_t>(count) * element_size(dtype));
    switch (dtype) {
      case PthDType::f32: break;
      case PthDType::bf16: floats_to_bf16(in, reinterpret_cast<BFloat16*>(converted.data()), count); break;
      case PthDType::f16: {
        auto* out = reinterpret_cast<uint16_t*>(converted.data());
#pragma omp parallel for schedule(static) if (count > (1 << 16))
        for (int64_t j = 0; j < count; ++j) out[j] = float_to_half(in[j]);
        break;
      }
    }
    zip.add(prefix + "data/" + std::to_string(i), converted);
  }
  const std::string version = "3\n";
  zip.add(prefix + "version", std::span(reinterpret_cast<const uint8_t*>(version.data()), version.size()));
  zip.finish();
  result.tensors = expected.size();
  result.file_bytes = zip.bytes_written();
  return result;
}

NamedTensors read_pth_tensors(const std::string& pth_path) {
  refuse_legacy_format(pth_path);
  const pth::ZipReader zip(pth_path);
  // The pickle is <archive>/data.pkl; the archive folder's name varies (torch 1.x used the file's stem).
  const pth::ZipEntry* pickle_entry = nullptr;
  for (const pth::ZipEntry& entry : zip.entries()) {
    const size_t slash = entry.name.find('/');
    if (slash != std::string::npos && entry.name.substr(slash + 1) == "data.pkl") {
      pickle_entry = &entry;
      break;
    }
  }
  RWKV_CHECK(pickle_entry != nullptr, pth_path, ": a zip archive without <archive>/data.pkl: not a torch.save file");
  const std::string prefix = pickle_entry->name.substr(0, pickle_entry->name.size() - 8);  // "archive/"
  const std::vector<pth::TensorRecord> records =
      pth::read_state_dict_pickle(zip.read(*pickle_entry), pth_path + ": " + pickle_entry->name);

  std::map<std::string, std::span<const uint8_t>> storages;  // each CRC-checked once
  NamedTensors tensors;
  for (const pth::TensorRecord& record : records) {
    const std::string where = pth_path + ": tensor '" + record.name + "'";
    StorageKind kind;
    size_t bytes_per_element;
    RWKV_CHECK(storage_kind(record.storage.type, kind, bytes_per_element), where, ": storage type torch.",
               record.storage.type, " is not supported (model weights must be Float, BFloat16, Half or Double)");
    const std::string record_name = prefix + "data/" + record.storage.key;
    auto found = storages.find(record_name);
    if (found == storages.end()) {
      const pth::ZipEntry* entry = zip.find(record_name);
      RWKV_CHECK(entry != nullptr, where, ": its storage record ", record_name, " is missing from the archive");
      found = storages.emplace(record_name, zip.read(*entry)).first;
    }
    const std::span<const uint8_t> storage = found->second;
    RWKV_CHECK(record.storage.numel >= 0 &&
                   static_cast<uint64_t>(record.storage.numel) <= storage.size() / bytes_per_element,
               where, ": storage record ", record_name, " holds ", storage.size(), " bytes, fewer than its ",
               record.storage.numel, " elements of ", bytes_per_element, " bytes");

    // Bounds: every element offset + sum(i_k * stride_k) must lie inside the storage.
    int64_t numel = 1, last = record.offset;
    bool valid = record.offset >= 0;
    for (size_t k = 0; k < record.size.size(); ++k) {
      valid = valid && record.size[k] >= 0 && record.stride[k] >= 0;
      numel *= record.size[k];
      if (record.size[k] > 0) last += (record.size[k] - 1) * record.stride[k];
    }
    RWKV_CHECK(valid, where, ": negative size, stride or offset (size ", shape_str(record.size), ", stride ",
               shape_str(record.stride), ", offset ", record.offset, ")");
    RWKV_CHECK(numel == 0 || last < record.storage.numel, where, ": size ", shape_str(record.size), ", stride ",
               shape_str(record.stride), " at offset ", record.offset, " reaches element ", last,
               ", outside its storage of ", record.storage.numel, " elements");

    Tensor tensor = Tensor::empty(record.size, DType::f32);
    float* out = tensor.data<float>();
    const uint8_t* base = storage.data() + static_cast<size_t>(record.offset) * bytes_per_element;
    if (numel > 0 && record.stride == torch_contiguous_strides(record.size)) {
      if (kind == StorageKind::f32) {
        std::memcpy(out, base, static_cast<size_t>(numel) * 4);
      } else {
#pragma omp parallel for schedule(static) if (numel > (1 << 16))
        for (int64_t i = 0; i < numel; ++i) out[i] = load_element(base + i * bytes_per_element, kind);
      }
    } else if (numel > 0) {
      // Any other strides (a transposed or sliced tensor saved as a view): gather element by element.
      std::vector<int64_t> index(record.size.size(), 0);
      for (int64_t i = 0; i < numel; ++i) {
        int64_t at = 0;
        for (size_t k = 0; k < index.size(); ++k) at += index[k] * record.stride[k];
        out[i] = load_element(base + at * static_cast<int64_t>(bytes_per_element), kind);
        for (size_t k = index.size(); k-- > 0;) {
          if (++index[k] < record.size[k]) break;
          index[k] = 0;
        }
      }
    }
    tensors.emplace_back(record.name, std::move(tensor));
  }
  return tensors;
}

PthModel read_pth_model(const std::string& pth_path, int64_t ctx_len) {
  NamedTensors all = read_pth_tensors(pth_path);
  std::map<std::string, size_t> index;
  std::vector<std::string> problems;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!index.emplace(all[i].first, i).second) problems.push_back("'" + all[i].first + "' appears twice");
  }
  auto shape_of = [&](const std::string& name) -> const Shape* {
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &all[it->second].second.shape();
  };

  // Dimensions from the tensors: emb.weight [V, C], the highest block index, the att/ffn key widths.
  PthModel model;
  const Shape* emb = shape_of("emb.weight");
  RWKV_CHECK(emb != nullptr && emb->size() == 2, pth_path, ": no 2-D emb.weight tensor, so this is not an RWKV-4 ",
             "state dict (vocab_size and n_embd come from it)");
  model.dims.vocab_size = (*emb)[0];
  model.dims.n_embd = (*emb)[1];
  for (const auto& [name, tensor] : all) {
    if (!name.starts_with("blocks.")) continue;
    const size_t dot = name.find('.', 7);
    const std::string number = name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (!number.empty() && number.size() < 10 && number.find_first_not_of("0123456789") == std::string::npos) {
      model.dims.n_layer = std::max<int64_t>(model.dims.n_layer, std::stoll(number) + 1);
    }
  }
  const Shape* att_key = shape_of("blocks.0.att.key.weight");
  const Shape* ffn_key = shape_of("blocks.0.ffn.key.weight");
  model.dims.dim_att = att_key != nullptr && !att_key->empty() ? (*att_key)[0] : model.dims.n_embd;
  model.dims.dim_ffn = ffn_key != nullptr && !ffn_key->empty() ? (*ffn_key)[0] : 4 * model.dims.n_embd;
  model.dims.ctx_len = ctx_len;
  try {
    model.dims = model.dims.resolved();
  } catch (const Error& error) {
    RWKV_FAIL(pth_path, ": the tensors describe an unusable model ", model.dims.describe(), ": ", error.what());
  }

  const auto expected = rwkv4_parameter_shapes(model.dims);
  std::set<std::string> wanted;
  for (const auto& [name, shape] : expected) {
    wanted.insert(name);
    const Shape* stored = shape_of(name);
    if (stored == nullptr) {
      problems.push_back(name + ": missing");
    } else if (*stored != shape) {
      problems.push_back(name + ": shape " + shape_str(*stored) + ", expected " + shape_str(shape));
    }
  }
  for (const auto& [name, tensor] : all) {
    if (!wanted.contains(name)) problems.push_back(name + ": unexpected tensor (not part of an RWKV-4 model)");
  }
  if (!problems.empty()) {
    report_problems(pth_path + ": not the state dict of an RWKV-4 " + model.dims.describe(), problems);
  }
  for (const auto& [name, shape] : expected) model.tensors.emplace_back(name, std::move(all[index.at(name)].second));
  return model;
}

}  // namespace rwkv
