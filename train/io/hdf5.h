// A small RAII layer over the HDF5 C library for checkpoints and test files: files, groups, tensor datasets and
// scalar attributes. HDF5's own error printing is switched off; every failure (missing file, not an HDF5 file,
// truncated file, missing object, unexpected type) throws rwkv::Error naming the file and the object path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rwkv::hdf5 {

namespace detail {
class Handle;  // one open HDF5 identifier, closed when the last owner goes away
}

// A group of an open file (the root group is "/"). Copies share the same open group; a group keeps its file
// open. Names passed to members are relative to this group and may contain '/' to reach into subgroups.
class Group {
public:
  const std::string& file_path() const { return file_path_; }
  const std::string& path() const { return path_; }  // absolute, e.g. "/model"
  std::string object_path(const std::string& name) const;  // "/model" + "emb.weight" -> "/model/emb.weight"

  // ---- members ----
  bool contains(const std::string& name) const;  // a group or dataset of that name exists
  bool contains_group(const std::string& name) const;
  bool contains_dataset(const std::string& name) const;
  // Link names in creation order when the file records it (files created here do), otherwise by name.
  std::vector<std::string> members() const;
  Group create_group(const std::string& name);  // fails if the name exists
  Group open_group(const std::string& name) const;
  void remove(const std::string& name);  // unlinks a member (the file does not shrink)

  // ---- datasets ----
  // Stores a tensor of any rank from any device. Element types: f32, f64, i32, i64, u16 as the standard
  // little-endian HDF5 types, bf16 as a 16-bit HDF5 float with bfloat16's layout. Fails if the name exists.
  void write_tensor(const std::string& name, const Tensor& tensor);
  // Reads a dataset into a new CPU tensor of its stored type (float16 widens to f32, other integer widths to
  // i64) or converted to `as`: floats convert to any float dtype and integers to any integer dtype.
  Tensor read_tensor(const std::string& name) const;
  Tensor read_tensor(const std::string& name, DType as) const;
  Shape dataset_shape(const std::string& name) const;
  std::string dataset_type(const std::string& name) const;  // "float32", "bfloat16", "int64", "string", ...

  // ---- attributes of this group ----
  bool has_attribute(const std::string& name) const;
  std::vector<std::string> attribute_names() const;
  // Setters replace an existing attribute of the same name. Strings are variable-length UTF-8.
  void set_int_attribute(const std::string& name, int64_t value);
  void set_double_attribute(const std::string& name, double value);
  void set_string_attribute(const std::string& name, const std::string& value);
  int64_t int_attribute(const std::string& name) const;  // any stored integer type
  double double_attribute(const std::string& name) const;  // any stored integer or float type
  std::string string_attribute(const std::string& name) const;  // fixed- or variable-length

private:
  friend class File;
  Group(std::shared_ptr<detail::Handle> file, std::shared_ptr<detail::Handle> group, std::string file_path,
        std::string path);

  std::shared_ptr<detail::Handle> file_;  // keeps the file open while the group is used
  std::shared_ptr<detail::Handle> group_;
  std::string file_path_;
  std::string path_;
};

class File {
public:
  // Creates or truncates. user_block_bytes (0, or a power of two >= 512) reserves that many bytes at the start
  // of the file that HDF5 leaves alone, e.g. for a seal (train/io/file_seal.h).
  static File create(const std::string& path, size_t user_block_bytes = 0);
  static File open_read(const std::string& path);
  static File open_read_write(const std::string& path);

  const std::string& path() const { return path_; }
  Group root() const;
  Group open_group(const std::string& path) const { return root().open_group(path); }
  bool contains(const std::string& path) const { return root().contains(path); }
  void flush();  // writes buffered data to disk; throws on failure
  // Flushes and releases this file object, reporting errors the destructor would have to swallow. Groups
  // still open keep the file open until they go away.
  void close();

private:
  File(std::shared_ptr<detail::Handle> file, std::string path);

  std::shared_ptr<detail::Handle> file_;
  std::string path_;
};

}  // namespace rwkv::hdf5
