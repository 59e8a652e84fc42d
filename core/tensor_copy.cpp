// Copies between layouts, dtypes and devices: contiguous(), clone(), to(), copy_(), fill_(), to_vector().
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/bf16.h"
#include "core/cuda_runtime.h"
#include "core/op_profile.h"
#include "core/tensor.h"

namespace rwkv {

namespace {

template <typename To, typename From>
To convert(From value) {
  if constexpr (std::is_same_v<To, From>) {
    return value;
  } else if constexpr (std::is_same_v<From, BFloat16>) {
    return convert<To>(bf16_to_float(value));
  } else if constexpr (std::is_same_v<To, BFloat16>) {
    return float_to_bf16(static_cast<float>(value));
  } else {
    return static_cast<To>(value);
  }
}

template <typename Fn>
void dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: return fn(float{});
    case DType::bf16: return fn(BFloat16{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::u16: return fn(uint16_t{});
    case DType::f64: return fn(double{});
  }
}

// Element-by-element strided copy with conversion, iterating the innermost dimension in a tight loop.
template <typename S, typename D>
void strided_copy_cpu(const S* src, const Shape& shape, const Shape& src_strides, D* dst, const Shape& dst_strides) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (rank == 0) {
    *dst = convert<D>(*src);
    return;
  }
  const int64_t inner = shape.back();
  const int64_t src_inner_stride = src_strides.back();
  const int64_t dst_inner_stride = dst_strides.back();
  const int64_t outer = inner == 0 ? 0 : shape_numel(shape) / inner;
#pragma omp parallel for schedule(static) if (outer * inner > (1 << 16))
  for (int64_t row = 0; row < outer; ++row) {
    int64_t src_offset = 0, dst_offset = 0, rest = row;
    for (int64_t d = rank - 2; d >= 0; --d) {
      const int64_t index = rest % shape[static_cast<size_t>(d)];
      rest /= shape[static_cast<size_t>(d)];
      src_offset += index * src_strides[static_cast<size_t>(d)];
      dst_offset += index * dst_strides[static_cast<size_t>(d)];
    }
    const S* s = src + src_offset;
    D* o = dst + dst_offset;
    for (int64_t i = 0; i < inner; ++i) o[i * dst_inner_stride] = convert<D>(s[i * src_inner_stride]);
  }
}

// Copies `src` (any layout, CPU) into `dst` (any layout, CPU, same shape), converting dtypes.
void copy_cpu(const Tensor& src, const Tensor& dst) {
  if (src.is_contiguous() && dst.is_contiguous()) {
    if (src.dtype() == dst.dtype()) {
      std::memcpy(dst.raw_data(), src.raw_data(), static_cast<size_t>(src.numel()) * dtype_size(src.dtype()));
      return;
    }
    if (src.dtype() == DType::f32 && dst.dtype() == DType::bf16) {
      floats_to_bf16(src.data<float>(), dst.data<BFloat16>(), src.numel());
      return;
    }
    if (src.dtype() == DType::bf16 && dst.dtype() == DType::f32) {
      bf16_to_floats(src.data<BFloat16>(), dst.data<float>(), src.numel());
      return;
    }
  }
  dispatch_dtype(src.dtype(), [&](auto s) {
    dispatch_dtype(dst.dtype(), [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      strided_copy_cpu(static_cast<const S*>(src.raw_data()), src.shape(), src.strides(),
                       static_cast<D*>(dst.raw_data()), dst.strides());
    });
  });
}

// Copies `src` into `dst` (same shape, contiguous or a strided view) on the same CUDA device, converting dtypes.
void copy_cuda_same_device(const Tensor& src, const Tensor& dst) {
  cuda::strided_copy(src.raw_data(), static_cast<int>(src.dtype()), src.shape().data(), src.strides().data(),
                     static_cast<int>(src.dim()), src.numel(), dst.raw_data(),
                     dst.is_contiguous() ? nullptr : dst.strides().data(), static_cast<int>(dst.dtype()),
                     src.device().index);
}

}  // namespace

Tensor Tensor::contiguous() const {
  RWKV_CHECK(defined(), "Tensor::contiguous: the tensor is undefined");
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device_);
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype, device_);
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor out = empty(shape_, dtype_, device);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& source) {
  RWKV_CHECK(defined() && source.defined(), "copy_: undefined tensor");
  profile::Scope profile_scope("copy / convert", source.device().is_cuda() ? source.device() : device_);
  RWKV_CHECK(source.shape() == shape_, "copy_: source ", source.describe(), " does not match destination ",
             describe());
  if (source.device() == device_) {
    if (device_.is_cpu()) {
      copy_cpu(source, *this);
    } else {
      copy_cuda_same_device(source, *this);
    }
    return;
  }
  // Across devices: make the source contiguous in the destination dtype on its own device, move the bytes,
  // then place them (a second local copy only when the destination is not contiguous).
  const Tensor packed = source.to(dtype_).contiguous();
  Tensor landing = is_contiguous() ? *this : empty(shape_, dtype_, device_);
  const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype_);
  if (bytes > 0) {
    if (source.device().is_cpu()) {
      cuda::memcpy_blocking(landing.raw_data(), packed.raw_data(), bytes, cuda::CopyKind::host_to_device,
                            device_.index);
    } else if (device_.is_cpu()) {
      cuda::memcpy_blocking(landing.raw_data(), packed.raw_data(), bytes, cuda::CopyKind::device_to_host,
                            source.device().index);
    } else {
      const Tensor staged = packed.to(Device::cpu());
      cuda::memcpy_blocking(landing.raw_data(), staged.raw_data(), bytes, cuda::CopyKind::host_to_device,
                            device_.index);
    }
  }
  if (!landing.shares_storage(*this)) copy_(landing);
}

void Tensor::fill_(double value) {
  RWKV_CHECK(defined(), "fill_: the tensor is undefined");
  profile::Scope profile_scope("copy / convert", device_);
  if (device_.is_cpu()) {
    dispatch_dtype(dtype_, [&](auto d) {
      using D = decltype(d);
      const D v = convert<D>(value);
      Tensor staged = empty({1}, dtype_);
      *static_cast<D*>(staged.raw_data()) = v;
      Tensor broadcast = staged;
      broadcast.shape_ = shape_;
      broadcast.strides_ = Shape(shape_.size(), 0);
      copy_cpu(broadcast, *this);
    });
    return;
  }
  if (value == 0.0 && !std::signbit(value) && is_contiguous()) {
    // +0 is all-zero bytes in every dtype: a memset on the stream, no upload and no host wait (zero_() runs
    // inside training steps).
    cuda::memset_zero(raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_), device_.index);
    return;
  }
  Tensor source = full({1}, value, dtype_, Device::cpu()).to(device_);
  source.shape_ = shape_;
  source.strides_ = Shape(shape_.size(), 0);
  copy_cuda_same_device(source, *this);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  RWKV_CHECK(defined(), "to_vector: the tensor is undefined");
  const Tensor host = device_.is_cpu() ? *this : to(Device::cpu());
  std::vector<T> out(static_cast<size_t>(numel()));
  dispatch_dtype(dtype_, [&](auto s) {
    using S = decltype(s);
    strided_copy_cpu(static_cast<const S*>(host.raw_data()), shape_, host.strides(), out.data(),
                     contiguous_strides(shape_));
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

}  // namespace rwkv
