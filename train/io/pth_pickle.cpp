#include "train/io/pth_pickle.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

#include "core/error.h"

namespace rwkv::pth {

namespace {

// Pickle opcodes (Lib/pickletools.py) used by torch.save and by pickled dicts in general.
enum Op : uint8_t {
  kMark = '(', kStop = '.', kPop = '0', kPopMark = '1', kDup = '2', kBinFloat = 'G', kBinInt = 'J',
  kBinInt1 = 'K', kBinInt2 = 'M', kNone = 'N', kBinPersId = 'Q', kReduce = 'R', kBinString = 'T',
  kShortBinString = 'U', kBinUnicode = 'X', kAppend = 'a', kBuild = 'b', kGlobal = 'c', kAppends = 'e',
  kBinGet = 'h', kLongBinGet = 'j', kEmptyList = ']', kBinPut = 'q', kLongBinPut = 'r', kSetItem = 's',
  kTuple = 't', kSetItems = 'u', kEmptyDict = '}', kEmptyTuple = ')', kBinBytes = 'B', kShortBinBytes = 'C',
  kProto = 0x80, kTuple1 = 0x85, kTuple2 = 0x86, kTuple3 = 0x87, kNewTrue = 0x88, kNewFalse = 0x89,
  kLong1 = 0x8a, kShortBinUnicode = 0x8c, kBinUnicode8 = 0x8d, kStackGlobal = 0x93, kMemoize = 0x94,
  kFrame = 0x95,
};

// ================================ writer ================================

class PickleWriter {
public:
  std::vector<uint8_t>& bytes() { return out_; }
  void op(uint8_t code) { out_.push_back(code); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  // Like CPython: BININT1/BININT2/BININT for what fits, LONG1 beyond 32 bits.
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op(kBinInt1);
      out_.push_back(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      op(kBinInt2);
      out_.push_back(static_cast<uint8_t>(v));
      out_.push_back(static_cast<uint8_t>(v >> 8));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op(kBinInt);
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      std::vector<uint8_t> le;
      for (int i = 0; i < 8; ++i) le.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
      // Drop redundant sign bytes, keeping the top bit of the last byte equal to the sign.
      while (le.size() > 1 && ((le.back() == 0 && (le[le.size() - 2] & 0x80) == 0) ||
                               (le.back() == 0xFF && (le[le.size() - 2] & 0x80) != 0))) {
        le.pop_back();
      }
      op(kLong1);
      out_.push_back(static_cast<uint8_t>(le.size()));
      out_.insert(out_.end(), le.begin(), le.end());
    }
  }
  void text(const std::string& s) {
    op(kBinUnicode);
    u32(static_cast<uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  // Memoised objects (globals and repeated strings) are written once and fetched afterwards, as pickle does.
  void global(const std::string& module, const std::string& name) {
    if (fetch(module + "\n" + name)) return;
    op(kGlobal);
    for (const std::string& part : {module, name}) {
      out_.insert(out_.end(), part.begin(), part.end());
      out_.push_back('\n');
    }
    put(module + "\n" + name);
  }
  void memo_text(const std::string& s) {
    if (fetch("str:" + s)) return;
    text(s);
    put("str:" + s);
  }
  void int_tuple(const std::vector<int64_t>& values) {
    if (values.empty()) return op(kEmptyTuple);
    if (values.size() > 3) op(kMark);
    for (int64_t v : values) integer(v);
    if (values.size() > 3) return op(kTuple);
    op(values.size() == 1 ? kTuple1 : values.size() == 2 ? kTuple2 : kTuple3);
  }

private:
  bool fetch(const std::string& key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) return false;
    if (it->second < 256) {
      op(kBinGet);
      out_.push_back(static_cast<uint8_t>(it->second));
    } else {
      op(kLongBinGet);
      u32(it->second);
    }
    return true;
  }
  void put(const std::string& key) {
    const uint32_t index = static_cast<uint32_t>(memo_.size());
    memo_[key] = index;
    if (index < 256) {
      op(kBinPut);
      out_.push_back(static_cast<uint8_t>(index));
    } else {
      op(kLongBinPut);
      u32(index);
    }
  }

  std::vector<uint8_t> out_;
  std::unordered_map<std::string, uint32_t> memo_;
};

// ================================ reader ================================

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { none, boolean, integer, floating, string, bytes, tuple, list, dict, global, storage, tensor };
  Kind kind = Kind::none;
  int64_t depth = 0;  // nesting of containers, bounded so that freeing a hostile pickle cannot overflow the stack
  int64_t integer = 0;
  double floating = 0;
  std::string text;  // string, bytes, or "module.name" of a global
  std::vector<ValuePtr> items;  // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict, in insertion order
  StorageRef storage;
  TensorRecord tensor;
};

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::none: return "None";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "str";
    case Value::Kind::bytes: return "bytes";
    case Value::Kind::tuple: return "tuple";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return "dict";
    case Value::Kind::global: return "global";
    case Value::Kind::storage: return "storage";
    case Value::Kind::tensor: return "tensor";
  }
  return "?";
}

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

class Unpickler {
public:
  Unpickler(std::span<const uint8_t> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

  ValuePtr run() {
    while (true) {
      op_offset_ = pos_;
      const uint8_t code = take(1)[0];
      if (code == kStop) break;
      step(code);
    }
    RWKV_CHECK(stack_.size() == 1 && marks_.empty(), where_, ": malformed pickle (", stack_.size(),
               " objects left on the stack at STOP)");
    return stack_.back();
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    RWKV_FAIL(where_, ": ", what, " (pickle opcode at offset ", op_offset_, ")");
  }
  const uint8_t* take(size_t count) {
    if (count > bytes_.size() - pos_) fail("truncated pickle: it ends inside an opcode");
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += count;
    return p;
  }
  uint64_t take_le(size_t count) {
    const uint8_t* p = take(count);
    uint64_t v = 0;
    for (size_t i = count; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  std::string take_text(uint64_t length) {
    if (length > bytes_.size() - pos_) fail("truncated pickle: a string runs past the end");
    const char* p = reinterpret_cast<const char*>(take(static_cast<size_t>(length)));
    return std::string(p, static_cast<size_t>(length));
  }
  std::string take_line() {
    std::string line;
    while (true) {
      const char c = static_cast<char>(take(1)[0]);
      if (c == '\n') return line;
      line.push_back(c);
    }
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail("malformed pickle: stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail("malformed pickle: stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("malformed pickle: no MARK for this opcode");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  void nest(Value& container, const Value& item) {
    constexpr int64_t kMaxDepth = 1000;
    container.depth = std::max(container.depth, item.depth + 1);
    if (container.depth > kMaxDepth) fail("objects nested more than 1000 deep; a state dict is not");
  }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    ValuePtr t = make(Value::Kind::tuple);
    for (const ValuePtr& item : items) nest(*t, *item);
    t->items = std::move(items);
    return t;
  }
  ValuePtr integer(int64_t v) {
    ValuePtr i = make(Value::Kind::integer);
    i->integer = v;
    return i;
  }
  ValuePtr string_value(std::string s, Value::Kind kind = Value::Kind::string) {
    ValuePtr v = make(kind);
    v->text = std::move(s);
    return v;
  }
  void memo_put(uint64_t index) {
    if (stack_.empty()) fail("malformed pickle: memo store with an empty stack");
    memo_[index] = stack_.back();
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("malformed pickle: memo entry " + std::to_string(index) + " was never stored");
    push(it->second);
  }
  void set_items(ValuePtr& dict, const std::vector<ValuePtr>& items) {
    if (dict->kind != Value::Kind::dict) fail(std::string("SETITEM on a ") + kind_name(dict->kind) + ", not a dict");
    if (items.size() % 2 != 0) fail("malformed pickle: SETITEMS with an odd number of objects");
    for (size_t i = 0; i < items.size(); i += 2) {
      nest(*dict, *items[i]);
      nest(*dict, *items[i + 1]);
      bool replaced = false;
      for (auto& [key, value] : dict->entries) {
        if (key->kind == Value::Kind::string && items[i]->kind == Value::Kind::string && key->text == items[i]->text) {
          value = items[i + 1];
          replaced = true;
        }
      }
      if (!replaced) dict->entries.emplace_back(items[i], items[i + 1]);
    }
  }
  int64_t as_int(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::integer) fail(std::string(what) + " should be an int, got " + kind_name(v->kind));
    return v->integer;
  }
  std::vector<int64_t> as_ints(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::tuple && v->kind != Value::Kind::list) {
      fail(std::string(what) + " should be a tuple of ints, got " + kind_name(v->kind));
    }
    std::vector<int64_t> out;
    for (const ValuePtr& item : v->items) out.push_back(as_int(item, what));
    return out;
  }

  // The persistent id of a storage: ('storage', torch.<Type>Storage, key, location, numel).
  ValuePtr persistent_load(const ValuePtr& pid) {
    if (pid->kind != Value::Kind::tuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Kind::string ||
        pid->items[0]->text != "storage") {
      fail("unsupported persistent id (expected a ('storage', type, key, location, numel) tuple)");
    }
    const ValuePtr& type = pid->items[1];
    if (type->kind != Value::Kind::global || !type->text.starts_with("torch.")) {
      fail("the storage type in a persistent id is not a torch.<Type>Storage global");
    }
    ValuePtr storage = make(Value::Kind::storage);
    storage->storage.type = type->text.substr(6);
    for (int i : {2, 3}) {
      if (pid->items[i]->kind != Value::Kind::string) fail("storage key and location should be strings");
    }
    storage->storage.key = pid->items[2]->text;
    storage->storage.location = pid->items[3]->text;
    storage->storage.numel = as_int(pid->items[4], "storage size");
    return storage;
  }

  // The callables a state dict needs; anything else is refused by name.
  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::Kind::global) fail(std::string("REDUCE on a ") + kind_name(callable->kind));
    if (args->kind != Value::Kind::tuple) fail("REDUCE arguments are not a tuple");
    const std::string& name = callable->text;
    const std::vector<ValuePtr>& a = args->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict") {
      if (!a.empty()) fail(name + " called with arguments");
      return make(Value::Kind::dict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::Kind::storage) {
        fail(name + " expects (storage, offset, size, stride, ...)");
      }
      ValuePtr tensor = make(Value::Kind::tensor);
      tensor->tensor.storage = a[0]->storage;
      tensor->tensor.offset = as_int(a[1], "tensor storage offset");
      tensor->tensor.size = as_ints(a[2], "tensor size");
      tensor->tensor.stride = as_ints(a[3], "tensor stride");
      if (tensor->tensor.size.size() != tensor->tensor.stride.size()) fail("tensor size and stride differ in rank");
      return tensor;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::Kind::tensor) fail(name + " expects a tensor");
      return a[0];
    }
    fail("unsupported callable " + name + " (a state dict of tensors needs only OrderedDict and torch._utils "
         "tensor rebuilders)");
  }

  void step(uint8_t code) {
    switch (code) {
      case kProto: {
        const uint8_t version = take(1)[0];
        if (version > 5) fail("pickle protocol " + std::to_string(version) + " is not supported");
        return;
      }
      case kFrame: take(8); return;
      case kMark: marks_.push_back(stack_.size()); return;
      case kPop: pop(); return;
      case kPopMark: pop_to_mark(); return;
      case kDup: push(top()); return;
      case kNone: push(make(Value::Kind::none)); return;
      case kNewTrue:
      case kNewFalse: {
        ValuePtr b = make(Value::Kind::boolean);
        b->integer = code == kNewTrue;
        return push(b);
      }
      case kBinInt: return push(integer(static_cast<int32_t>(take_le(4))));
      case kBinInt1: return push(integer(static_cast<int64_t>(take_le(1))));
      case kBinInt2: return push(integer(static_cast<int64_t>(take_le(2))));
      case kLong1: {
        const uint8_t n = take(1)[0];
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes does not fit 64 bits");
        uint64_t v = n == 0 ? 0 : take_le(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~0ull << (8 * n);  // sign-extend
        return push(integer(static_cast<int64_t>(v)));
      }
      case kBinFloat: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        ValuePtr f = make(Value::Kind::floating);
        std::memcpy(&f->floating, &bits, sizeof(bits));
        return push(f);
      }
      case kBinUnicode: return push(string_value(take_text(take_le(4))));
      case kShortBinUnicode: return push(string_value(take_text(take_le(1))));
      case kBinUnicode8: return push(string_value(take_text(take_le(8))));
      case kBinString: return push(string_value(take_text(take_le(4))));
      case kShortBinString: return push(string_value(take_text(take_le(1))));
      case kBinBytes: return push(string_value(take_text(take_le(4)), Value::Kind::bytes));
      case kShortBinBytes: return push(string_value(take_text(take_le(1)), Value::Kind::bytes));
      case kEmptyTuple: return push(tuple({}));
      case kTuple: return push(tuple(pop_to_mark()));
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        std::vector<ValuePtr> items(code - kTuple1 + 1);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        return push(tuple(std::move(items)));
      }
      case kEmptyList: return push(make(Value::Kind::list));
      case kAppend: {
        ValuePtr item = pop();
        ValuePtr& list = top();
        if (list->kind != Value::Kind::list) fail("APPEND to a non-list");
        nest(*list, *item);
        list->items.push_back(item);
        return;
      }
      case kAppends: {
        std::vector<ValuePtr> items = pop_to_mark();
        ValuePtr& list = top();
        if (list->kind != Value::Kind::list) fail("APPENDS to a non-list");
        for (const ValuePtr& item : items) nest(*list, *item);
        list->items.insert(list->items.end(), items.begin(), items.end());
        return;
      }
      case kEmptyDict: return push(make(Value::Kind::dict));
      case kSetItem: {
        ValuePtr value = pop(), key = pop();
        return set_items(top(), {key, value});
      }
      case kSetItems: {
        std::vector<ValuePtr> items = pop_to_mark();
        return set_items(top(), items);
      }
      case kGlobal: {
        std::string module = take_line();
        std::string name = take_line();
        return push(string_value(module + "." + name, Value::Kind::global));
      }
      case kStackGlobal: {
        ValuePtr name = pop(), module = pop();
        if (name->kind != Value::Kind::string || module->kind != Value::Kind::string) {
          fail("STACK_GLOBAL needs two strings");
        }
        return push(string_value(module->text + "." + name->text, Value::Kind::global));
      }
      case kReduce: {
        ValuePtr args = pop(), callable = pop();
        return push(call(callable, args));
      }
      case kBuild: {
        pop();  // the state: an OrderedDict's attributes (torch's _metadata); tensors need none of it
        if (top()->kind != Value::Kind::dict && top()->kind != Value::Kind::tensor) {
          fail(std::string("BUILD on a ") + kind_name(top()->kind));
        }
        return;
      }
      case kBinPersId: return push(persistent_load(pop()));
      case kBinPut: return memo_put(take_le(1));
      case kLongBinPut: return memo_put(take_le(4));
      case kMemoize: return memo_put(memo_.size());
      case kBinGet: return memo_get(take_le(1));
      case kLongBinGet: return memo_get(take_le(4));
      default: {
        char text[64];
        std::snprintf(text, sizeof(text), "unsupported pickle opcode 0x%02x", code);
        std::string message = text;
        if (code >= 0x20 && code < 0x7f) message += std::string(" ('") + static_cast<char>(code) + "')";
        fail(message + "; a torch.save'd state dict does not use it");
      }
    }
  }

  std::span<const uint8_t> bytes_;
  std::string where_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
};

}  // namespace

std::vector<uint8_t> write_state_dict_pickle(const std::vector<TensorRecord>& tensors) {
  PickleWriter w;
  w.op(kProto);
  w.bytes().push_back(2);
  w.global("collections", "OrderedDict");
  w.op(kEmptyTuple);
  w.op(kReduce);
  constexpr size_t kBatch = 1000;  // pickle's own SETITEMS batch size
  for (size_t first = 0; first < tensors.size(); first += kBatch) {
    w.op(kMark);
    for (size_t i = first; i < tensors.size() && i < first + kBatch; ++i) {
      const TensorRecord& t = tensors[i];
      w.text(t.name);
      w.global("torch._utils", "_rebuild_tensor_v2");
      w.op(kMark);
      w.op(kMark);  // the persistent id tuple
      w.memo_text("storage");
      w.global("torch", t.storage.type);
      w.text(t.storage.key);
      w.memo_text(t.storage.location);
      w.integer(t.storage.numel);
      w.op(kTuple);
      w.op(kBinPersId);
      w.integer(t.offset);
      w.int_tuple(t.size);
      w.int_tuple(t.stride);
      w.op(kNewFalse);  // requires_grad
      w.global("collections", "OrderedDict");  // backward_hooks: OrderedDict()
      w.op(kEmptyTuple);
      w.op(kReduce);
      w.op(kTuple);
      w.op(kReduce);
    }
    w.op(kSetItems);
  }
  w.op(kStop);
  return std::move(w.bytes());
}

std::vector<TensorRecord> read_state_dict_pickle(std::span<const uint8_t> pickle, const std::string& where) {
  const ValuePtr root = Unpickler(pickle, where).run();
  RWKV_CHECK(root->kind == Value::Kind::dict, where, ": the pickled object is a ", kind_name(root->kind),
             ", expected a dict of tensors (a state_dict)");
  std::vector<TensorRecord> tensors;
  std::vector<std::string> problems;
  for (const auto& [key, value] : root->entries) {
    if (key->kind != Value::Kind::string) {
      problems.push_back(std::string("a key is a ") + kind_name(key->kind) + ", not a string");
    } else if (value->kind != Value::Kind::tensor) {
      problems.push_back("'" + key->text + "' holds a " + kind_name(value->kind) + ", not a tensor" +
                         (value->kind == Value::Kind::dict ? " (a training checkpoint? save its state_dict)" : ""));
    } else {
      tensors.push_back(value->tensor);
      tensors.back().name = key->text;
    }
  }
  if (!problems.empty()) {
    std::string message = where + ": not a flat state dict of tensors:";
    for (const std::string& p : problems) message += "\n  " + p;
    throw Error(message);
  }
  return tensors;
}

}  // namespace rwkv::pth
