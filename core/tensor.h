// Tensor: a view (shape, strides in elements, offset) of refcounted storage with a dtype and a device.
// Views (reshape, slice, transpose, squeeze, unsqueeze) share storage; contiguous(), to() and clone() copy.
// A default-constructed Tensor is "undefined" (defined() == false), used for absent gradients.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/device.h"
#include "core/error.h"
#include "core/shape.h"

namespace rwkv {

// A block of memory from an allocator; freed when the last tensor that views it goes away.
class Storage {
public:
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

private:
  void* data_;
  size_t bytes_;
  Device device_;
  Allocator* allocator_;
};

class Tensor {
public:
  Tensor() = default;

  // ---- factories ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(float value);  // a rank-0 f32 tensor on the CPU
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  // ---- metadata ----
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_contiguous() const;
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }
  std::string describe() const;  // "f32[2, 3] cpu"

  // ---- element access (the pointer already includes the offset) ----
  void* raw_data() const;
  template <typename T>
  T* data() const {
    RWKV_CHECK(defined(), "Tensor::data: the tensor is undefined");
    RWKV_CHECK(DTypeOf<T>::value == dtype_, "Tensor::data: requested ", dtype_name(DTypeOf<T>::value),
               " elements of a ", describe(), " tensor");
    return static_cast<T*>(raw_data());
  }
  template <typename T>
  std::vector<T> to_vector() const;  // contiguous copy on the CPU, converted to T
  float item() const;                // the single element of a one-element tensor, as float

  // ---- views ----
  Tensor reshape(const Shape& shape) const;  // a view when the layout allows, else a contiguous copy
  Tensor view(const Shape& shape) const;     // always a view; the tensor must be contiguous
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0) to `shape`, NumPy rules

  // ---- copies ----
  Tensor contiguous() const;  // this tensor if already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  // f32 -> bf16 rounds to nearest even
  void copy_(const Tensor& source);  // same shape; any dtype and device
  void fill_(double value);
  void zero_() { fill_(0.0); }

private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::f32;
  Device device_;
};

}  // namespace rwkv
