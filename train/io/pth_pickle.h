// The data.pkl of a torch.save'd state dict: a pickle (protocol 2) of an OrderedDict name -> tensor, where each
// tensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) and each
// storage is a persistent id ('storage', torch.<Type>Storage, key, location, numel) whose bytes are the zip
// entry <archive>/data/<key>. The writer produces exactly that; the reader is an interpreter for the opcodes
// such files use (protocols 2-4, plain dicts, OrderedDicts with _metadata, Parameters), refusing anything else
// with the opcode and its offset.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rwkv::pth {

struct StorageRef {
  std::string type;  // "FloatStorage", "BFloat16Storage", "HalfStorage", ...
  std::string key;   // the entry data/<key>
  std::string location = "cpu";
  int64_t numel = 0;  // elements in the storage
};

struct TensorRecord {
  std::string name;
  StorageRef storage;
  int64_t offset = 0;  // in elements
  std::vector<int64_t> size;
  std::vector<int64_t> stride;  // in elements
};

// The pickle of an OrderedDict of these tensors, in this order.
std::vector<uint8_t> write_state_dict_pickle(const std::vector<TensorRecord>& tensors);

// Reads a pickled dict (OrderedDict or dict) of tensors; returns them in the pickle's order. `where` names the
// pickle in error messages ("model.pth: archive/data.pkl").
std::vector<TensorRecord> read_state_dict_pickle(std::span<const uint8_t> pickle, const std::string& where);

}  // namespace rwkv::pth
