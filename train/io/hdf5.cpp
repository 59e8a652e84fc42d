#include "train/io/hdf5.h"

#include <hdf5.h>

#include <filesystem>
#include <type_traits>
#include <utility>

#include "train/io/file_seal.h"

namespace rwkv::hdf5 {

static_assert(std::is_same_v<hid_t, int64_t>, "this wrapper expects HDF5 >= 1.10 (64-bit identifiers)");

namespace detail {

// Owns one HDF5 identifier and closes it with the matching H5*close.
class Handle {
public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      close();
      id_ = std::exchange(other.id_, -1);
      closer_ = other.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  herr_t close() {  // closes now so that the caller sees the result
    const herr_t status = id_ >= 0 ? closer_(id_) : 0;
    id_ = -1;
    return status;
  }

private:
  hid_t id_;
  Closer closer_;
};

}  // namespace detail

namespace {

using detail::Handle;

// Every file is closed by its owner. HDF5's own clean-up at exit would retry a file whose write failed (disk
// full, EFBIG) and crash in H5F__close_cb (HDF5 1.10), turning a clear error into a segfault. It must be
// switched off before the library's first call (even H5F_ACC_* initialise it), hence a static initialiser.
[[maybe_unused]] const bool hdf5_cleanup_at_exit_off = H5dont_atexit() >= 0;

// HDF5 prints its error stack to stderr by default; we report errors ourselves. The setting is per thread in
// thread-safe builds of the library, hence thread_local.
void silence_hdf5_errors() {
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
}

herr_t collect_innermost_message(unsigned, const H5E_error2_t* error, void* out) {
  auto* message = static_cast<std::string*>(out);
  if (message->empty() && error->desc != nullptr && error->desc[0] != '\0') *message = error->desc;
  // A failed system call's description spans lines with buffer addresses and times; its errno text says it.
  const size_t system = message->find("error message = '");
  if (system != std::string::npos) {
    const size_t start = system + 17, end = message->find('\'', start);
    *message = "system error: " + message->substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  return 0;
}

// The most specific description on HDF5's error stack (e.g. "truncated file: eof = 100, ..."); clears it.
std::string take_hdf5_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_innermost_message, &message);
  H5Eclear2(H5E_DEFAULT);
  return message;
}

[[noreturn]] void fail(const std::string& file, const std::string& object, const std::string& what) {
  const std::string hdf5_message = take_hdf5_message();
  std::string message = file + ": ";
  if (!object.empty()) message += object + ": ";
  message += what;
  if (!hdf5_message.empty()) message += " (HDF5: " + hdf5_message + ")";
  throw Error(message);
}

std::string join_path(const std::string& parent, const std::string& name) {
  if (!name.empty() && name.front() == '/') return name;  // absolute: HDF5 resolves it from the root
  if (parent.empty() || parent == "/") return "/" + name;
  return parent + "/" + name;
}

// ---- datatypes ----

// bfloat16 as an HDF5 float: sign bit 15, 8 exponent bits at 7, 7 mantissa bits at 0, bias 127.
hid_t new_bf16_type(hid_t float32_base) {
  const hid_t type = H5Tcopy(float32_base);
  if (type < 0) return type;
  if (H5Tset_fields(type, 15, 7, 8, 0, 7) < 0 || H5Tset_size(type, 2) < 0 || H5Tset_ebias(type, 127) < 0) {
    H5Tclose(type);
    return -1;
  }
  return type;
}

bool is_bf16_layout(hid_t type) {
  size_t sign_pos = 0, exp_pos = 0, exp_bits = 0, mant_pos = 0, mant_bits = 0;
  if (H5Tget_fields(type, &sign_pos, &exp_pos, &exp_bits, &mant_pos, &mant_bits) < 0) return false;
  return H5Tget_size(type) == 2 && exp_bits == 8 && mant_bits == 7;
}

std::string type_name(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      if (bits == 16) return is_bf16_layout(type) ? "bfloat16" : "float16";
      return "float" + std::to_string(bits);
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    default: return "unknown type";
  }
}

// The DType a stored type reads into by default; false when it is not a number.
bool natural_dtype(hid_t type, DType& dtype) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      if (size == 2) {
        dtype = is_bf16_layout(type) ? DType::bf16 : DType::f32;
      } else {
        dtype = size <= 4 ? DType::f32 : DType::f64;
      }
      return true;
    case H5T_INTEGER:
      if (H5Tget_sign(type) == H5T_SGN_NONE) {
        dtype = size == 2 ? DType::u16 : DType::i64;
      } else {
        dtype = size == 4 ? DType::i32 : DType::i64;
      }
      return true;
    default: return false;
  }
}

// Layout of a DType in memory (native) or in the file (little-endian standard types).
Handle datatype_for(DType dtype, bool in_file) {
  hid_t base = -1;
  switch (dtype) {
    case DType::f32: base = in_file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT; break;
    case DType::f64: base = in_file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE; break;
    case DType::i32: base = in_file ? H5T_STD_I32LE : H5T_NATIVE_INT32; break;
    case DType::i64: base = in_file ? H5T_STD_I64LE : H5T_NATIVE_INT64; break;
    case DType::u16: base = in_file ? H5T_STD_U16LE : H5T_NATIVE_UINT16; break;
    case DType::bf16: return Handle(new_bf16_type(in_file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT), H5Tclose);
  }
  return Handle(H5Tcopy(base), H5Tclose);
}

Handle dataspace_for(const Shape& shape) {
  if (shape.empty()) return Handle(H5Screate(H5S_SCALAR), H5Sclose);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
}

// Shape of a dataspace; false for a null dataspace (no elements, not even a scalar).
bool dataspace_shape(hid_t space, Shape& shape) {
  const H5S_class_t kind = H5Sget_simple_extent_type(space);
  if (kind == H5S_SCALAR) {
    shape.clear();
    return true;
  }
  if (kind != H5S_SIMPLE) return false;
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return false;
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) return false;
  shape.assign(dims.begin(), dims.end());
  return true;
}

Handle new_group_creation_list() {
  Handle list(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  // Track creation order so members() lists tensors in the order they were written (state_dict order).
  if (list.valid()) H5Pset_link_creation_order(list.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return list;
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

// ---- File ----

File::File(std::shared_ptr<detail::Handle> file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}

File File::create(const std::string& path, size_t user_block_bytes) {
  silence_hdf5_errors();
  Handle creation_list(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  if (!creation_list.valid() ||
      H5Pset_link_creation_order(creation_list.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
      (user_block_bytes > 0 && H5Pset_userblock(creation_list.id(), user_block_bytes) < 0)) {
    fail(path, "", "cannot prepare the file creation properties");
  }
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, creation_list.id(), H5P_DEFAULT);
  if (id < 0) fail(path, "", "cannot create the HDF5 file");
  return File(std::make_shared<Handle>(id, H5Fclose), path);
}

namespace {
hid_t open_existing(const std::string& path, unsigned flags) {
  silence_hdf5_errors();
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) fail(path, "", "no such file");
  if (!std::filesystem::is_regular_file(status)) fail(path, "", "not a regular file");
  check_seal(path);  // a damaged sealed file must not reach the library: HDF5 can crash on damaged metadata
#if H5_VERSION_GE(1, 12, 0)  // H5Fis_hdf5 is deprecated from 1.12 on
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 == 0) fail(path, "", "not an HDF5 file (no HDF5 signature)");
  if (is_hdf5 < 0) fail(path, "", "cannot read the file");
  const hid_t id = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  if (id < 0) fail(path, "", "cannot open the HDF5 file (truncated or damaged?)");
  return id;
}
}  // namespace

File File::open_read(const std::string& path) {
  return File(std::make_shared<Handle>(open_existing(path, H5F_ACC_RDONLY), H5Fclose), path);
}

File File::open_read_write(const std::string& path) {
  return File(std::make_shared<Handle>(open_existing(path, H5F_ACC_RDWR), H5Fclose), path);
}

Group File::root() const {
  RWKV_CHECK(file_ != nullptr, path_, ": the file was closed");
  silence_hdf5_errors();
  const hid_t id = H5Gopen2(file_->id(), "/", H5P_DEFAULT);
  if (id < 0) fail(path_, "/", "cannot open the root group");
  return Group(file_, std::make_shared<Handle>(id, H5Gclose), path_, "/");
}

void File::flush() {
  RWKV_CHECK(file_ != nullptr, path_, ": the file was closed");
  silence_hdf5_errors();
  if (H5Fflush(file_->id(), H5F_SCOPE_LOCAL) < 0) fail(path_, "", "cannot write the file to disk");
}

void File::close() {
  if (file_ == nullptr) return;
  flush();
  const bool last_owner = file_.use_count() == 1;
  const herr_t status = last_owner ? file_->close() : 0;
  file_.reset();
  if (status < 0) fail(path_, "", "cannot close the file");
}

// ---- Group ----

Group::Group(std::shared_ptr<detail::Handle> file, std::shared_ptr<detail::Handle> group, std::string file_path,
             std::string path)
    : file_(std::move(file)), group_(std::move(group)), file_path_(std::move(file_path)), path_(std::move(path)) {}

std::string Group::object_path(const std::string& name) const { return join_path(path_, name); }

bool Group::contains(const std::string& name) const {
  silence_hdf5_errors();
  if (name.empty()) return false;
  // H5Lexists fails rather than answering "no" when a middle component of a path is missing: test each prefix.
  for (size_t end = name.find('/'); ; end = name.find('/', end + 1)) {
    const std::string prefix = name.substr(0, end);
    if (!prefix.empty() && prefix.back() != '/' && H5Lexists(group_->id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
      take_hdf5_message();
      return false;
    }
    if (end == std::string::npos) return true;
  }
}

namespace {
H5I_type_t object_kind(hid_t location, const std::string& name) {
  Handle object(H5Oopen(location, name.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) {
    take_hdf5_message();
    return H5I_BADID;
  }
  return H5Iget_type(object.id());
}
}  // namespace

bool Group::contains_group(const std::string& name) const {
  return contains(name) && object_kind(group_->id(), name) == H5I_GROUP;
}

bool Group::contains_dataset(const std::string& name) const {
  return contains(name) && object_kind(group_->id(), name) == H5I_DATASET;
}

std::vector<std::string> Group::members() const {
  silence_hdf5_errors();
  H5G_info_t info;
  if (H5Gget_info(group_->id(), &info) < 0) fail(file_path_, path_, "cannot list the group");
  unsigned order_flags = 0;
  Handle creation_list(H5Gget_create_plist(group_->id()), H5Pclose);
  if (creation_list.valid()) H5Pget_link_creation_order(creation_list.id(), &order_flags);
  const bool by_creation = (order_flags & H5P_CRT_ORDER_TRACKED) && (order_flags & H5P_CRT_ORDER_INDEXED);
  const H5_index_t index = by_creation ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;

  std::vector<std::string> names;
  names.reserve(info.nlinks);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t length = H5Lget_name_by_idx(group_->id(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (length < 0) fail(file_path_, path_, "cannot read the name of member " + std::to_string(i));
    std::string name(static_cast<size_t>(length) + 1, '\0');
    H5Lget_name_by_idx(group_->id(), ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(length));
    names.push_back(std::move(name));
  }
  return names;
}

Group Group::create_group(const std::string& name) {
  silence_hdf5_errors();
  if (contains(name)) fail(file_path_, object_path(name), "already exists");
  Handle creation_list = new_group_creation_list();
  const hid_t id = H5Gcreate2(group_->id(), name.c_str(), H5P_DEFAULT, creation_list.id(), H5P_DEFAULT);
  if (id < 0) fail(file_path_, object_path(name), "cannot create the group");
  return Group(file_, std::make_shared<Handle>(id, H5Gclose), file_path_, object_path(name));
}

Group Group::open_group(const std::string& name) const {
  silence_hdf5_errors();
  if (!contains(name)) fail(file_path_, object_path(name), "no such group");
  if (object_kind(group_->id(), name) != H5I_GROUP) fail(file_path_, object_path(name), "is not a group");
  const hid_t id = H5Gopen2(group_->id(), name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(file_path_, object_path(name), "cannot open the group");
  return Group(file_, std::make_shared<Handle>(id, H5Gclose), file_path_, object_path(name));
}

void Group::remove(const std::string& name) {
  silence_hdf5_errors();
  if (!contains(name)) fail(file_path_, object_path(name), "no such member to remove");
  if (H5Ldelete(group_->id(), name.c_str(), H5P_DEFAULT) < 0) fail(file_path_, object_path(name), "cannot remove");
}

// ---- datasets ----

void Group::write_tensor(const std::string& name, const Tensor& tensor) {
  silence_hdf5_errors();
  const std::string where = object_path(name);
  if (!tensor.defined()) fail(file_path_, where, "cannot write an undefined tensor");
  if (tensor.dim() > H5S_MAX_RANK) fail(file_path_, where, "rank " + std::to_string(tensor.dim()) + " is too high");
  if (contains(name)) fail(file_path_, where, "already exists");
  const Tensor host = tensor.to(Device::cpu()).contiguous();

  Handle file_type = datatype_for(host.dtype(), true);
  Handle memory_type = datatype_for(host.dtype(), false);
  Handle space = dataspace_for(host.shape());
  if (!file_type.valid() || !memory_type.valid() || !space.valid()) {
    fail(file_path_, where, "cannot describe " + host.describe() + " to HDF5");
  }
  Handle dataset(H5Dcreate2(group_->id(), name.c_str(), file_type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT),
                 H5Dclose);
  if (!dataset.valid()) fail(file_path_, where, "cannot create the dataset");
  if (host.numel() > 0 &&
      H5Dwrite(dataset.id(), memory_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.raw_data()) < 0) {
    fail(file_path_, where, "cannot write " + host.describe());
  }
  if (dataset.close() < 0) fail(file_path_, where, "cannot finish writing the dataset");
}

namespace {
// An open dataset with its type and shape, or a clear error.
struct OpenDataset {
  Handle dataset;
  Handle type;
  Shape shape;
};

OpenDataset open_dataset(hid_t location, const std::string& file_path, const std::string& where,
                         const std::string& name) {
  if (object_kind(location, name) != H5I_DATASET) fail(file_path, where, "is not a dataset");
  OpenDataset out{Handle(H5Dopen2(location, name.c_str(), H5P_DEFAULT), H5Dclose), Handle(-1, H5Tclose), {}};
  if (!out.dataset.valid()) fail(file_path, where, "cannot open the dataset");
  out.type = Handle(H5Dget_type(out.dataset.id()), H5Tclose);
  Handle space(H5Dget_space(out.dataset.id()), H5Sclose);
  if (!out.type.valid() || !space.valid()) fail(file_path, where, "cannot read the dataset's type and shape");
  if (!dataspace_shape(space.id(), out.shape)) fail(file_path, where, "has no elements (null dataspace)");
  return out;
}
}  // namespace

namespace {
Tensor read_dataset(const OpenDataset& stored, DType as, const std::string& file_path, const std::string& where) {
  const H5T_class_t stored_class = H5Tget_class(stored.type.id());
  const bool stored_float = stored_class == H5T_FLOAT;
  if (!(stored_float || stored_class == H5T_INTEGER) || stored_float != is_floating(as)) {
    fail(file_path, where,
         "holds " + type_name(stored.type.id()) + " values, which cannot be read as " + dtype_name(as));
  }
  // HDF5 converts between float layouts exactly when widening; to bf16 we round to nearest even ourselves.
  if (as == DType::bf16 && !is_bf16_layout(stored.type.id())) {
    return read_dataset(stored, DType::f32, file_path, where).to(DType::bf16);
  }
  Tensor values = Tensor::empty(stored.shape, as);
  Handle memory_type = datatype_for(as, false);
  if (!memory_type.valid()) fail(file_path, where, std::string("cannot describe ") + dtype_name(as) + " to HDF5");
  if (values.numel() > 0 &&
      H5Dread(stored.dataset.id(), memory_type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.raw_data()) < 0) {
    fail(file_path, where, "cannot read " + type_name(stored.type.id()) + shape_str(stored.shape) + " data");
  }
  return values;
}
}  // namespace

Tensor Group::read_tensor(const std::string& name) const {
  silence_hdf5_errors();
  const std::string where = object_path(name);
  if (!contains(name)) fail(file_path_, where, "no such dataset");
  const OpenDataset stored = open_dataset(group_->id(), file_path_, where, name);
  DType natural = DType::f32;
  if (!natural_dtype(stored.type.id(), natural)) {
    fail(file_path_, where, "holds " + type_name(stored.type.id()) + " values, not numbers");
  }
  return read_dataset(stored, natural, file_path_, where);
}

Tensor Group::read_tensor(const std::string& name, DType as) const {
  silence_hdf5_errors();
  const std::string where = object_path(name);
  if (!contains(name)) fail(file_path_, where, "no such dataset");
  return read_dataset(open_dataset(group_->id(), file_path_, where, name), as, file_path_, where);
}

Shape Group::dataset_shape(const std::string& name) const {
  silence_hdf5_errors();
  const std::string where = object_path(name);
  if (!contains(name)) fail(file_path_, where, "no such dataset");
  return open_dataset(group_->id(), file_path_, where, name).shape;
}

std::string Group::dataset_type(const std::string& name) const {
  silence_hdf5_errors();
  const std::string where = object_path(name);
  if (!contains(name)) fail(file_path_, where, "no such dataset");
  return type_name(open_dataset(group_->id(), file_path_, where, name).type.id());
}

// ---- attributes ----

bool Group::has_attribute(const std::string& name) const {
  silence_hdf5_errors();
  const htri_t exists = H5Aexists(group_->id(), name.c_str());
  if (exists < 0) fail(file_path_, path_, "cannot look up attribute " + name);
  return exists > 0;
}

std::vector<std::string> Group::attribute_names() const {
  silence_hdf5_errors();
  std::vector<std::string> names;
  hsize_t position = 0;
  if (H5Aiterate2(group_->id(), H5_INDEX_NAME, H5_ITER_INC, &position, collect_attribute_name, &names) < 0) {
    fail(file_path_, path_, "cannot list the attributes");
  }
  return names;
}

namespace {
// Writes a one-element attribute, replacing any attribute of the same name.
void write_attribute(hid_t location, const std::string& file_path, const std::string& where, const std::string& name,
                     hid_t file_type, hid_t memory_type, const void* value) {
  const htri_t exists = H5Aexists(location, name.c_str());
  if (exists < 0 || (exists > 0 && H5Adelete(location, name.c_str()) < 0)) {
    fail(file_path, where, "cannot replace attribute " + name);
  }
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(location, name.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.valid() || H5Awrite(attribute.id(), memory_type, value) < 0) {
    fail(file_path, where, "cannot write attribute " + name);
  }
}

// An open one-element attribute and its stored type.
struct OpenAttribute {
  Handle attribute;
  Handle type;
};

OpenAttribute open_attribute(hid_t location, const std::string& file_path, const std::string& where,
                             const std::string& name) {
  const htri_t exists = H5Aexists(location, name.c_str());
  if (exists <= 0) fail(file_path, where, "attribute " + name + " is missing");
  OpenAttribute out{Handle(H5Aopen(location, name.c_str(), H5P_DEFAULT), H5Aclose), Handle(-1, H5Tclose)};
  if (!out.attribute.valid()) fail(file_path, where, "cannot open attribute " + name);
  out.type = Handle(H5Aget_type(out.attribute.id()), H5Tclose);
  Handle space(H5Aget_space(out.attribute.id()), H5Sclose);
  if (!out.type.valid() || !space.valid()) fail(file_path, where, "cannot read the type of attribute " + name);
  if (H5Sget_simple_extent_npoints(space.id()) != 1) {
    fail(file_path, where, "attribute " + name + " holds several values, expected one");
  }
  return out;
}
}  // namespace

void Group::set_int_attribute(const std::string& name, int64_t value) {
  silence_hdf5_errors();
  write_attribute(group_->id(), file_path_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void Group::set_double_attribute(const std::string& name, double value) {
  silence_hdf5_errors();
  write_attribute(group_->id(), file_path_, path_, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void Group::set_string_attribute(const std::string& name, const std::string& value) {
  silence_hdf5_errors();
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.valid() || H5Tset_size(type.id(), H5T_VARIABLE) < 0 || H5Tset_cset(type.id(), H5T_CSET_UTF8) < 0) {
    fail(file_path_, path_, "cannot describe a string attribute to HDF5");
  }
  const char* text = value.c_str();
  write_attribute(group_->id(), file_path_, path_, name, type.id(), type.id(), &text);
}

int64_t Group::int_attribute(const std::string& name) const {
  silence_hdf5_errors();
  const OpenAttribute stored = open_attribute(group_->id(), file_path_, path_, name);
  if (H5Tget_class(stored.type.id()) != H5T_INTEGER) {
    fail(file_path_, path_, "attribute " + name + " is " + type_name(stored.type.id()) + ", expected an integer");
  }
  int64_t value = 0;
  if (H5Aread(stored.attribute.id(), H5T_NATIVE_INT64, &value) < 0) {
    fail(file_path_, path_, "cannot read attribute " + name);
  }
  return value;
}

double Group::double_attribute(const std::string& name) const {
  silence_hdf5_errors();
  const OpenAttribute stored = open_attribute(group_->id(), file_path_, path_, name);
  const H5T_class_t stored_class = H5Tget_class(stored.type.id());
  if (stored_class != H5T_FLOAT && stored_class != H5T_INTEGER) {
    fail(file_path_, path_, "attribute " + name + " is " + type_name(stored.type.id()) + ", expected a number");
  }
  double value = 0;
  if (H5Aread(stored.attribute.id(), H5T_NATIVE_DOUBLE, &value) < 0) {
    fail(file_path_, path_, "cannot read attribute " + name);
  }
  return value;
}

std::string Group::string_attribute(const std::string& name) const {
  silence_hdf5_errors();
  const OpenAttribute stored = open_attribute(group_->id(), file_path_, path_, name);
  if (H5Tget_class(stored.type.id()) != H5T_STRING) {
    fail(file_path_, path_, "attribute " + name + " is " + type_name(stored.type.id()) + ", expected a string");
  }
  Handle memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
  const htri_t variable = H5Tis_variable_str(stored.type.id());
  // HDF5 does not convert between ASCII and UTF-8: read in the stored character set.
  if (!memory_type.valid() || variable < 0 || H5Tset_cset(memory_type.id(), H5Tget_cset(stored.type.id())) < 0) {
    fail(file_path_, path_, "cannot read attribute " + name);
  }
  if (variable > 0) {
    char* text = nullptr;
    if (H5Tset_size(memory_type.id(), H5T_VARIABLE) < 0 ||
        H5Aread(stored.attribute.id(), memory_type.id(), &text) < 0) {
      fail(file_path_, path_, "cannot read attribute " + name);
    }
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(stored.type.id());
  std::string value(size + 1, '\0');
  if (H5Tset_size(memory_type.id(), size + 1) < 0 ||
      H5Aread(stored.attribute.id(), memory_type.id(), value.data()) < 0) {
    fail(file_path_, path_, "cannot read attribute " + name);
  }
  value.resize(value.find('\0'));  // fixed-length strings may be padded with NULs
  return value;
}

}  // namespace rwkv::hdf5
