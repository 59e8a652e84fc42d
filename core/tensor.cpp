#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/cuda_runtime.h"

namespace rwkv {

Storage::Storage(size_t bytes, Device device)
    : bytes_(bytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(bytes);
}

Storage::~Storage() { allocator_->deallocate(data_, bytes_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t extent : shape) {
    RWKV_CHECK(extent >= 0, "Tensor::empty: negative extent in shape ", shape_str(shape));
  }
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cpu()) {
    std::memset(t.raw_data(), 0, t.storage_->bytes());
  } else {
    cuda::memset_zero(t.raw_data(), t.storage_->bytes(), device.index);
  }
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(float value) { return from_vector<float>({value}, {}); }

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  RWKV_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ", values.size(),
             " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DTypeOf<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor Tensor::from_vector<uint16_t>(const std::vector<uint16_t>&, const Shape&);

int64_t Tensor::size(int64_t d) const { return shape_[static_cast<size_t>(wrap_dim(d, dim(), "Tensor::size"))]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device_.str();
}

void* Tensor::raw_data() const {
  RWKV_CHECK(defined(), "Tensor::raw_data: the tensor is undefined");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

float Tensor::item() const {
  RWKV_CHECK(numel() == 1, "Tensor::item: expected one element, got ", describe());
  return to_vector<float>()[0];
}

Tensor Tensor::view(const Shape& shape) const {
  RWKV_CHECK(is_contiguous(), "Tensor::view: ", describe(), " is not contiguous; use reshape()");
  Shape resolved = shape;
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      RWKV_CHECK(infer_at < 0, "Tensor::view: more than one -1 in ", shape_str(shape));
      infer_at = static_cast<int>(i);
    } else {
      RWKV_CHECK(resolved[i] >= 0, "Tensor::view: negative extent in ", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (infer_at >= 0) {
    RWKV_CHECK(known > 0 && numel() % known == 0, "Tensor::view: cannot infer -1 in ", shape_str(shape),
               " for ", describe());
    resolved[static_cast<size_t>(infer_at)] = numel() / known;
  }
  RWKV_CHECK(shape_numel(resolved) == numel(), "Tensor::view: shape ", shape_str(shape), " does not match ",
             describe());
  Tensor t = *this;
  t.shape_ = resolved;
  t.strides_ = contiguous_strides(resolved);
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  const int64_t axis = wrap_dim(d, dim(), "Tensor::slice");
  const int64_t extent = shape_[static_cast<size_t>(axis)];
  RWKV_CHECK(0 <= start && start <= end && end <= extent, "Tensor::slice: range [", start, ", ", end,
             ") is outside dimension ", axis, " of ", describe());
  Tensor t = *this;
  t.offset_ += start * strides_[static_cast<size_t>(axis)];
  t.shape_[static_cast<size_t>(axis)] = end - start;
  return t;
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  const auto a = static_cast<size_t>(wrap_dim(dim0, dim(), "Tensor::transpose"));
  const auto b = static_cast<size_t>(wrap_dim(dim1, dim(), "Tensor::transpose"));
  Tensor t = *this;
  std::swap(t.shape_[a], t.shape_[b]);
  std::swap(t.strides_[a], t.strides_[b]);
  return t;
}

Tensor Tensor::squeeze(int64_t d) const {
  const auto axis = static_cast<size_t>(wrap_dim(d, dim(), "Tensor::squeeze"));
  RWKV_CHECK(shape_[axis] == 1, "Tensor::squeeze: dimension ", axis, " of ", describe(), " is not 1");
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin() + static_cast<int64_t>(axis));
  t.strides_.erase(t.strides_.begin() + static_cast<int64_t>(axis));
  return t;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  const auto axis = static_cast<size_t>(wrap_dim(d, dim() + 1, "Tensor::unsqueeze"));
  Tensor t = *this;
  const int64_t stride = axis < shape_.size() ? strides_[axis] * shape_[axis] : 1;
  t.shape_.insert(t.shape_.begin() + static_cast<int64_t>(axis), 1);
  t.strides_.insert(t.strides_.begin() + static_cast<int64_t>(axis), stride);
  return t;
}

Tensor Tensor::expand(const Shape& shape) const {
  RWKV_CHECK(shape.size() >= shape_.size(), "Tensor::expand: cannot expand ", describe(), " to ", shape_str(shape));
  const size_t lead = shape.size() - shape_.size();
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_.assign(shape.size(), 0);
  for (size_t i = 0; i < shape_.size(); ++i) {
    const int64_t have = shape_[i], want = shape[lead + i];
    RWKV_CHECK(have == want || have == 1, "Tensor::expand: cannot expand ", describe(), " to ", shape_str(shape));
    t.strides_[lead + i] = have == want ? strides_[i] : 0;
  }
  return t;
}

}  // namespace rwkv
