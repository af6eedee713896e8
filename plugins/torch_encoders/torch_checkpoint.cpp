#include "histoflow/torch_encoders/torch_checkpoint.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "histoflow/crc32.hpp"
#include "histoflow/input_limits.hpp"

namespace histoflow::torch_encoders {
namespace {

// ------------------------------------------------------------------------------------------ zip archive

struct ZipEntry {
  std::uint64_t data_offset = 0;
  std::uint64_t size = 0;
};

// Whether [at, at + bytes) lies inside the file. Offsets and sizes come from the file: the test never adds them.
bool fits(const std::string& b, std::uint64_t at, std::uint64_t bytes) { return at <= b.size() && bytes <= b.size() - at; }

std::uint64_t le(const std::string& b, std::uint64_t at, int bytes) {
  if (!fits(b, at, static_cast<std::uint64_t>(bytes))) throw std::out_of_range("zip structure runs past the end of the file");
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)]);
  return v;
}

std::map<std::string, ZipEntry> read_zip(const std::string& b) {
  // The end-of-central-directory record sits in the last 64 KiB.
  std::size_t eocd = std::string::npos;
  for (std::size_t i = b.size() >= 22 ? b.size() - 22 : 0; i + 22 <= b.size() && i + 65557 >= b.size(); --i) {
    if (le(b, i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0) break;
  }
  if (eocd == std::string::npos) throw std::runtime_error("no zip directory at the end (truncated file?)");
  std::uint64_t count = le(b, eocd + 10, 2), directory = le(b, eocd + 16, 4);
  if ((count == 0xffff || directory == 0xffffffff) && eocd >= 20 && le(b, eocd - 20, 4) == 0x07064b50) {
    const std::uint64_t eocd64 = le(b, eocd - 20 + 8, 8);  // ZIP64: archives over 4 GiB (ViT-g checkpoints)
    if (!fits(b, eocd64, 56) || le(b, eocd64, 4) != 0x06064b50) throw std::runtime_error("damaged ZIP64 directory record");
    count = le(b, eocd64 + 32, 8);
    directory = le(b, eocd64 + 48, 8);
  }
  check_input_limit(InputLimit::ArchiveMembers, count, "its zip directory");
  if (directory > b.size()) throw std::runtime_error("the zip directory lies past the end of the file (truncated?)");
  std::map<std::string, ZipEntry> entries;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;  // [local header, end of data) of each entry
  std::uint64_t at = directory;  // <= b.size() throughout: every step below is checked against the file first
  for (std::uint64_t n = 0; n < count; ++n) {
    if (!fits(b, at, 46) || le(b, at, 4) != 0x02014b50) throw std::runtime_error("damaged zip directory");
    const auto method = le(b, at + 10, 2);
    std::uint64_t compressed = le(b, at + 20, 4), size = le(b, at + 24, 4), local = le(b, at + 42, 4);
    const auto name_length = le(b, at + 28, 2), extra_length = le(b, at + 30, 2), comment_length = le(b, at + 32, 2);
    const std::uint64_t name_at = at + 46;
    if (!fits(b, name_at, name_length + extra_length + comment_length))
      throw std::runtime_error("damaged zip directory (an entry runs past the end of the file)");
    const std::string name = b.substr(name_at, name_length);
    const std::uint64_t extra_end = name_at + name_length + extra_length;
    for (std::uint64_t e = name_at + name_length; extra_end - e >= 4;) {
      const auto id = le(b, e, 2), length = le(b, e + 2, 2);
      if (length > extra_end - e - 4) throw std::runtime_error("damaged extra field in zip entry '" + name + "'");
      if (id == 0x0001) {  // ZIP64 sizes and offset, in the order of the fields that overflowed
        std::uint64_t field = e + 4;
        const auto next = [&] {
          if (e + 4 + length - field < 8) throw std::runtime_error("damaged ZIP64 field in zip entry '" + name + "'");
          field += 8;
          return le(b, field - 8, 8);
        };
        if (size == 0xffffffff) size = next();
        if (compressed == 0xffffffff) compressed = next();
        if (local == 0xffffffff) local = next();
      }
      e += 4 + length;
    }
    if (method != 0) throw std::runtime_error("zip entry '" + name + "' is compressed; torch.save writes stored entries");
    if (compressed != size) throw std::runtime_error("zip entry '" + name + "' is stored, but its two sizes disagree");
    if (!fits(b, local, 30) || le(b, local, 4) != 0x04034b50) throw std::runtime_error("damaged zip entry '" + name + "'");
    const std::uint64_t data = local + 30 + le(b, local + 26, 2) + le(b, local + 28, 2);  // local + 30 <= b.size()
    if (!fits(b, data, size)) throw std::runtime_error("zip entry '" + name + "' runs past the end of the file (truncated?)");
    if (!entries.emplace(name, ZipEntry{data, size}).second) throw std::runtime_error("the zip archive holds '" + name + "' twice");
    spans.emplace_back(local, data + size);
    at = extra_end + comment_length;
  }
  // Entries that share bytes would let a small file name the same gigabyte many times (each storage is copied once).
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) throw std::runtime_error("zip entries overlap (a damaged or crafted archive)");
  return entries;
}

// ------------------------------------------------------------------------------------------ pickle

struct Object {
  enum class Kind : std::uint8_t { None, Bool, Int, Float, Text, Tuple, List, Dict, Global, Storage, Tensor, Opaque } kind = Kind::None;
  std::uint64_t depth = 0;        // containers nested inside it (as far as the pickle built them; see Unpickler::add)
  std::int64_t integer = 0;       // Int, Bool; Storage and Tensor: the index of their CheckpointTensor
  double real = 0;
  std::string text;               // Text (str and bytes), Global ("module.name"), Opaque (what it was)
  std::vector<Object*> items;     // Tuple, List; Dict: key, value, key, value... in insertion order; Opaque: its arguments
};

// Every object of one pickle belongs to the arena and objects point at each other with plain pointers: a pickle
// whose containers hold themselves (through the memo) leaks nothing, and freeing deep nesting recurses nowhere.
struct Arena {
  std::deque<Object> objects;
  std::deque<CheckpointTensor> tensors;  // Storage (dtype, bytes) and Tensor objects
};

std::string storage_dtype(const std::string& type) {
  static const std::map<std::string, std::string> names = {
      {"torch.FloatStorage", "F32"}, {"torch.DoubleStorage", "F64"}, {"torch.HalfStorage", "F16"},
      {"torch.BFloat16Storage", "BF16"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
      {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"}, {"torch.ByteStorage", "U8"}, {"torch.BoolStorage", "BOOL"}};
  auto it = names.find(type);
  if (it == names.end()) throw std::runtime_error("storage type '" + type + "' is not supported");
  return it->second;
}

// Weights only, as torch.load(weights_only=True): the globals a pickle may name are the ones a state dict, an
// optimiser's state dict and plain training metadata need. Anything else is refused the moment it is named, so
// nothing a checkpoint names is ever looked up, let alone called (histoflow calls nothing in any case).
enum class Role {
  Value,           // data only (storage types in persistent ids, dtypes, torch.Tensor): never called
  RebuildTensor,   // _rebuild_tensor(_v2)(storage, offset, shape, strides, ...): a tensor
  NewDtypeTensor,  // _rebuild_tensor_v3: tensors of dtypes without a legacy storage type (uint16, float8)
  Parameter,       // a Parameter around its tensor: the tensor
  FromType,        // _rebuild_from_type_v2(rebuild, Tensor or Parameter, args, state): a tensor with Python attributes
  OrderedDict,     // collections.OrderedDict: a dict
  TypeTag,         // restore_type_tag(value, "Dict[str, Tensor]") of LibTorch's pickler: the value
  Size,            // torch.Size(tuple): the tuple
  Device,          // torch.device("cuda", 0) in an optimiser's or trainer's state: kept as data
  Bytes,           // _codecs.encode(text, "latin1"): how protocol 2 writes bytes
  Kept,            // a global the caller allowed: kept opaque, never called
};

const std::map<std::string, Role>& allowed_globals() {
  static const std::map<std::string, Role> table = [] {
    std::map<std::string, Role> t = {
        {"torch._utils._rebuild_tensor", Role::RebuildTensor},
        {"torch._utils._rebuild_tensor_v2", Role::RebuildTensor},
        {"torch._utils._rebuild_tensor_v3", Role::NewDtypeTensor},
        {"torch._utils._rebuild_parameter", Role::Parameter},
        {"torch._utils._rebuild_parameter_with_state", Role::Parameter},
        {"torch.nn.parameter.Parameter", Role::Parameter},
        {"torch._tensor._rebuild_from_type_v2", Role::FromType},
        {"torch.Tensor", Role::Value},
        {"collections.OrderedDict", Role::OrderedDict},
        {"torch.jit._pickle.restore_type_tag", Role::TypeTag},
        {"torch.Size", Role::Size},
        {"torch.device", Role::Device},
        {"_codecs.encode", Role::Bytes},
        {"torch.UntypedStorage", Role::Value},
    };
    for (const char* s : {"Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexFloat",
                          "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4"})
      t.emplace(std::string("torch.") + s + "Storage", Role::Value);
    for (const char* d : {"float16", "float32", "float64", "bfloat16", "complex32", "complex64", "complex128", "int8", "int16", "int32",
                          "int64", "uint8", "uint16", "uint32", "uint64", "bool", "float8_e4m3fn", "float8_e5m2"})
      t.emplace(std::string("torch.") + d, Role::Value);
    return t;
  }();
  return table;
}

// What the unsupported opcodes are, for the error (protocol 0 text forms, extension codes, sets, out-of-band buffers).
const char* opcode_name(unsigned char op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'p': return "PUT";
    case 'g': return "GET";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case '2': return "DUP";
    default: return nullptr;
  }
}

std::string refusal(const std::string& global) {
  std::string why = "the pickle names '" + global + "', which a weights-only checkpoint never needs; histoflow executes nothing "
                    "from a checkpoint (only tensors, numbers, strings, lists, tuples and dicts are read)";
  if (global.rfind("__torch__.", 0) == 0)
    why += "; this looks like a TorchScript archive (torch.jit.save): use backbone = \"torchscript\"";
  return why;
}

class Unpickler {
 public:
  using StorageLoader = std::function<std::shared_ptr<const std::string>(const std::string&)>;
  Unpickler(const std::string& data, Arena& arena, StorageLoader storage, const std::vector<std::string>& allowed)
      : d_(data), arena_(arena), storage_(std::move(storage)), allowed_(allowed.begin(), allowed.end()),
        max_objects_(input_limit(InputLimit::PickleObjects)), max_memo_(input_limit(InputLimit::PickleMemo)),
        max_depth_(input_limit(InputLimit::PickleNesting)) {}

  Object* run() {
    for (;;) {
      const std::size_t at = pos_;
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;                     // PROTO
        case 0x95: skip(8); break;                    // FRAME
        case '.': return pop();                       // STOP
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': push(make(Object::Kind::None)); break;
        case 0x88: push(boolean(true)); break;
        case 0x89: push(boolean(false)); break;
        case 'J': push(integer(static_cast<std::int32_t>(le32()))); break;
        case 'K': push(integer(static_cast<unsigned char>(byte()))); break;
        case 'M': push(integer(static_cast<std::int64_t>(le(d_, advance(2), 2)))); break;
        case 0x8a: push(long_bytes(static_cast<unsigned char>(byte()))); break;  // LONG1
        case 0x8b: push(long_bytes(le32())); break;                              // LONG4
        case 'G': {
          std::uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = bits << 8 | static_cast<unsigned char>(byte());
          auto o = make(Object::Kind::Float);
          std::memcpy(&o->real, &bits, 8);
          push(o);
          break;
        }
        case 'X': push(text(le32())); break;                          // BINUNICODE
        case 0x8c: push(text(static_cast<unsigned char>(byte()))); break;  // SHORT_BINUNICODE
        case 0x8d: case 0x8e: push(text(le(d_, advance(8), 8))); break;    // BINUNICODE8, BINBYTES8
        case 'T': case 'B': push(text(le32())); break;                // BINSTRING, BINBYTES
        case 'U': case 'C': push(text(static_cast<unsigned char>(byte()))); break;
        case ')': push(make(Object::Kind::Tuple)); break;
        case ']': push(make(Object::Kind::List)); break;
        case '}': push(make(Object::Kind::Dict)); break;
        case 't': case 'l': {
          auto o = make(op == 't' ? Object::Kind::Tuple : Object::Kind::List);
          add(o, pop_to_mark());
          push(o);
          break;
        }
        case 'd': {
          auto o = make(Object::Kind::Dict);
          add_pairs(o, pop_to_mark());
          push(o);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          std::vector<Object*> items(op - 0x84);
          for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
          auto o = make(Object::Kind::Tuple);
          add(o, items);
          push(o);
          break;
        }
        case 'a': {
          auto v = pop();
          add(top_list(), {v});
          break;
        }
        case 'e': {
          auto items = pop_to_mark();
          add(top_list(), items);
          break;
        }
        case 's': {
          auto v = pop(), k = pop();
          add_pairs(top_dict(), {k, v});
          break;
        }
        case 'u': {
          auto items = pop_to_mark();
          add_pairs(top_dict(), items);
          break;
        }
        case 'q': remember(static_cast<unsigned char>(byte())); break;  // BINPUT
        case 'r': remember(le32()); break;                             // LONG_BINPUT
        case 0x94: remember(memo_entries_); break;                     // MEMOIZE
        case 'h': push(memo(static_cast<unsigned char>(byte()))); break;  // BINGET
        case 'j': push(memo(le32())); break;                              // LONG_BINGET
        case 'c': {                                                       // GLOBAL
          const std::string module = line(), name = line();
          push(global(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          if (name->kind != Object::Kind::Text || module->kind != Object::Kind::Text)
            throw std::runtime_error("malformed pickle: STACK_GLOBAL without a module and a name");
          push(global(module->text + "." + name->text));
          break;
        }
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'R': case 0x81: {                     // REDUCE, NEWOBJ
          auto args = pop(), callable = pop();
          push(call(callable, args));
          break;
        }
        case '0': pop(); break;           // POP
        case '1': pop_to_mark(); break;   // POP_MARK
        case 'b': {  // BUILD: the state of an object (OrderedDict._metadata, a kept object's fields): read, not applied
          pop();
          top();
          break;
        }
        case 'i': {  // INST names its class inline: refused by that name when it is not allowed
          const std::string module = line(), name = line();
          global(module + "." + name);
          [[fallthrough]];
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          const char* known = opcode_name(op);
          throw std::runtime_error(std::string("unsupported pickle opcode ") + (known ? std::string(known) + " (" + hex + ")" : hex) +
                                   " at byte " + std::to_string(at));
        }
      }
    }
  }

 private:
  char byte() {
    if (pos_ >= d_.size()) throw std::runtime_error("the pickle ends before its STOP (truncated?)");
    return d_[pos_++];
  }
  std::size_t advance(std::uint64_t n) {
    if (n > d_.size() - pos_) throw std::runtime_error("the pickle ends early (truncated?)");
    pos_ += static_cast<std::size_t>(n);
    return pos_ - static_cast<std::size_t>(n);
  }
  void skip(std::size_t n) { advance(n); }
  std::uint32_t le32() { return static_cast<std::uint32_t>(le(d_, advance(4), 4)); }
  std::string line() {
    const auto end = d_.find('\n', pos_);
    if (end == std::string::npos) throw std::runtime_error("unterminated GLOBAL in the pickle");
    std::string s = d_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  Object* make(Object::Kind kind) {
    // Counted with the copies below (OrderedDict of a memoised list, tensor shapes), which cost no bytes of the pickle.
    charge(1);
    auto& o = arena_.objects.emplace_back();
    o.kind = kind;
    return &o;
  }
  void charge(std::uint64_t objects) {
    objects_ += objects;
    if (objects_ > max_objects_) check_input_limit(InputLimit::PickleObjects, objects_, "the pickle");
  }
  Object* long_bytes(std::uint64_t n) {
    const std::size_t at = advance(n);
    if (n > 8) {  // a Python int beyond 64 bits (a seed, a hash): kept, but no tensor can use it
      auto o = make(Object::Kind::Opaque);
      o->text = "int";
      return o;
    }
    if (n == 0) return integer(0);
    std::uint64_t v = le(d_, at, static_cast<int>(n));
    if (n < 8 && (static_cast<unsigned char>(d_[at + n - 1]) & 0x80)) v |= ~std::uint64_t{0} << (8 * n);  // sign
    return integer(static_cast<std::int64_t>(v));
  }
  Object* text(std::uint64_t n) {
    const std::size_t at = advance(n);
    auto o = make(Object::Kind::Text);
    o->text = d_.substr(at, static_cast<std::size_t>(n));
    return o;
  }
  Object* integer(std::int64_t v) {
    auto o = make(Object::Kind::Int);
    o->integer = v;
    return o;
  }
  Object* boolean(bool v) {
    auto o = make(Object::Kind::Bool);
    o->integer = v;
    return o;
  }

  // The stack as Python's unpickler sees it: a MARK starts a new one, and nothing pops below it.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Object* o) { stack_.push_back(o); }
  Object* pop() {
    if (stack_.size() <= floor()) throw std::runtime_error("malformed pickle: unpickling stack underflow");
    Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Object* top() {
    if (stack_.size() <= floor()) throw std::runtime_error("malformed pickle: unpickling stack underflow");
    return stack_.back();
  }
  Object* top_list() {
    Object* o = top();
    if (o->kind != Object::Kind::List) throw std::runtime_error("malformed pickle: APPEND to something that is not a list");
    return o;
  }
  Object* top_dict() {
    Object* o = top();
    if (o->kind != Object::Kind::Dict) throw std::runtime_error("malformed pickle: SETITEM on something that is not a dict");
    return o;
  }
  std::vector<Object*> pop_to_mark() {
    if (marks_.empty()) throw std::runtime_error("malformed pickle: could not find MARK");
    const std::size_t mark = marks_.back();  // <= stack_.size(): pops never go below it
    marks_.pop_back();
    std::vector<Object*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  // Nesting is counted where a container takes an item: a tree's depth exactly, a structure completed through the
  // memo afterwards at least partly. Nothing here recurses over objects; find_state_dict bounds its own depth.
  void add(Object* container, const std::vector<Object*>& items) {
    for (Object* item : items) {
      container->depth = std::max(container->depth, item->depth + 1);
      container->items.push_back(item);
    }
    if (container->depth > max_depth_) check_input_limit(InputLimit::PickleNesting, container->depth, "the pickle");
  }
  void add_pairs(Object* dict, const std::vector<Object*>& items) {
    if (items.size() % 2 != 0) throw std::runtime_error("malformed pickle: a dict's keys and values do not pair up");
    add(dict, items);
  }

  // Pickles number their memo entries 0, 1, 2...: those sit in a vector, any other key (a crafted one) in a map.
  void remember(std::uint64_t key) {
    Object* o = top();
    if (key == memo_.size()) {
      memo_.push_back(nullptr);
      if (auto it = sparse_memo_.find(key); it != sparse_memo_.end()) sparse_memo_.erase(it), --memo_entries_;
    }
    Object*& slot = key < memo_.size() ? memo_[key] : sparse_memo_[key];
    if (!slot) ++memo_entries_;
    slot = o;
    if (memo_entries_ > max_memo_) check_input_limit(InputLimit::PickleMemo, memo_entries_, "the pickle");
  }
  Object* memo(std::uint64_t key) {
    if (key < memo_.size() && memo_[key]) return memo_[key];
    auto it = sparse_memo_.find(key);
    if (it == sparse_memo_.end()) throw std::runtime_error("malformed pickle: memo entry " + std::to_string(key) + " was never stored");
    return it->second;
  }

  Object* global(const std::string& name) {
    const auto& table = allowed_globals();
    if (!table.count(name) && !allowed_.count(name)) throw std::runtime_error(refusal(name));
    auto g = make(Object::Kind::Global);
    g->text = name;
    return g;
  }
  Role role(const Object* global) const {
    if (global->kind != Object::Kind::Global) throw std::runtime_error("malformed pickle: it calls something that is not a global");
    const auto& table = allowed_globals();
    auto it = table.find(global->text);
    return it != table.end() ? it->second : Role::Kept;  // only allowed names become globals
  }

  // ('storage', <storage type>, key, location, numel), as torch.save writes it
  Object* persistent(const Object* id) {
    if (id->kind != Object::Kind::Tuple || id->items.size() < 5 || id->items[0]->kind != Object::Kind::Text ||
        id->items[0]->text != "storage" || id->items[1]->kind != Object::Kind::Global || id->items[2]->kind != Object::Kind::Text)
      throw std::runtime_error("unexpected persistent id in the pickle (torch.save writes ('storage', type, key, location, size))");
    auto s = make(Object::Kind::Storage);
    auto& t = arena_.tensors.emplace_back();
    t.dtype = storage_dtype(id->items[1]->text);
    t.storage = storage_(id->items[2]->text);
    s->integer = static_cast<std::int64_t>(arena_.tensors.size() - 1);
    return s;
  }

  std::vector<std::int64_t> integers(const Object* tuple, const char* what) {
    if (tuple->kind != Object::Kind::Tuple && tuple->kind != Object::Kind::List)
      throw std::runtime_error(std::string("a tensor's ") + what + " is not a tuple of integers");
    check_input_limit(InputLimit::TensorDimensions, tuple->items.size(), std::string("a tensor's ") + what);
    charge(tuple->items.size());
    std::vector<std::int64_t> out;
    for (const Object* i : tuple->items) {
      if (i->kind != Object::Kind::Int) throw std::runtime_error(std::string("a tensor's ") + what + " is not a tuple of integers");
      out.push_back(i->integer);
    }
    return out;
  }

  Object* rebuild_tensor(const Object* args) {
    if (args->kind != Object::Kind::Tuple || args->items.size() < 4)
      throw std::runtime_error("a tensor's arguments are not (storage, offset, shape, strides, ...)");
    const Object* storage = args->items[0];
    if (storage->kind != Object::Kind::Storage) throw std::runtime_error("a tensor without a storage in the pickle");
    if (args->items[1]->kind != Object::Kind::Int) throw std::runtime_error("a tensor's storage offset is not an integer");
    auto o = make(Object::Kind::Tensor);
    CheckpointTensor t = arena_.tensors.at(static_cast<std::size_t>(storage->integer));  // dtype and bytes
    t.offset = args->items[1]->integer;
    t.shape = integers(args->items[2], "shape");
    t.strides = integers(args->items[3], "strides");
    if (t.strides.size() != t.shape.size())
      throw std::runtime_error("a tensor has " + std::to_string(t.shape.size()) + " dimensions and " +
                               std::to_string(t.strides.size()) + " strides");
    arena_.tensors.push_back(std::move(t));
    o->integer = static_cast<std::int64_t>(arena_.tensors.size() - 1);
    return o;
  }

  static Object* argument(const Object* args, std::size_t i, const std::string& callable) {
    if (args->kind != Object::Kind::Tuple || args->items.size() <= i)
      throw std::runtime_error("malformed pickle: too few arguments for '" + callable + "'");
    return args->items[i];
  }

  // REDUCE and NEWOBJ: what the allowed callables build, in data; nothing is called.
  Object* call(const Object* callable, Object* args) {
    const Role r = role(callable);
    const std::string& name = callable->text;
    switch (r) {
      case Role::RebuildTensor: return rebuild_tensor(args);
      case Role::Parameter: return argument(args, 0, name);
      case Role::TypeTag: return argument(args, 0, name);
      case Role::Size: {
        Object* shape = argument(args, 0, name);
        if (shape->kind != Object::Kind::Tuple && shape->kind != Object::Kind::List)
          throw std::runtime_error("malformed pickle: torch.Size of something that is not a tuple");
        return shape;
      }
      case Role::FromType: {
        // (rebuild function, torch.Tensor or Parameter, its arguments, the Python attributes, which are dropped)
        const Object* rebuild = argument(args, 0, name);
        const Object* type = argument(args, 1, name);
        if (rebuild->kind != Object::Kind::Global || role(rebuild) != Role::RebuildTensor || type->kind != Object::Kind::Global ||
            (type->text != "torch.Tensor" && type->text != "torch.nn.parameter.Parameter"))
          throw std::runtime_error("a tensor subclass in the pickle (only torch.Tensor and Parameter are read)");
        return rebuild_tensor(argument(args, 2, name));
      }
      case Role::OrderedDict: {
        // OrderedDict() then SETITEMS is how pickle writes it; OrderedDict([(key, value), ...]) is read too.
        auto d = make(Object::Kind::Dict);
        if (args->kind == Object::Kind::Tuple && !args->items.empty() && args->items[0]->kind == Object::Kind::List) {
          std::vector<Object*> flat;
          for (const Object* pair : args->items[0]->items) {
            if ((pair->kind != Object::Kind::Tuple && pair->kind != Object::Kind::List) || pair->items.size() != 2)
              throw std::runtime_error("malformed pickle: OrderedDict of something other than pairs");
            flat.push_back(pair->items[0]), flat.push_back(pair->items[1]);
          }
          charge(flat.size());  // a copy: the list may be a memo entry used many times
          add(d, flat);
        }
        return d;
      }
      case Role::Bytes: return bytes(argument(args, 0, name), argument(args, 1, name));
      case Role::Device: case Role::Kept: {
        auto o = make(Object::Kind::Opaque);  // kept as data: its arguments, never interpreted
        o->text = name;
        add(o, {args});
        return o;
      }
      case Role::NewDtypeTensor: throw std::runtime_error("a tensor of a dtype without a storage type (" + name + ") is not supported");
      case Role::Value: break;
    }
    throw std::runtime_error("the pickle calls '" + name + "', which a weights-only checkpoint never calls");
  }

  // _codecs.encode(text, "latin1"): each character below 256 is one byte.
  Object* bytes(const Object* text, const Object* encoding) {
    if (text->kind != Object::Kind::Text || encoding->kind != Object::Kind::Text ||
        (encoding->text != "latin1" && encoding->text != "latin-1"))
      throw std::runtime_error("the pickle calls _codecs.encode other than on text with 'latin1' (protocol 2 bytes)");
    // The text may be a memo entry encoded many times: the bytes made this way are bounded by the pickle's size.
    encoded_ += text->text.size();
    if (encoded_ > d_.size()) throw std::runtime_error("malformed pickle: _codecs.encode makes more bytes than the pickle holds");
    auto o = make(Object::Kind::Text);
    const std::string& s = text->text;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        o->text.push_back(static_cast<char>(c));
      } else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xc0) == 0x80) {
        o->text.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f)));
      } else {
        throw std::runtime_error("the pickle calls _codecs.encode on text that is not latin-1");
      }
    }
    return o;
  }

  const std::string& d_;
  Arena& arena_;
  std::size_t pos_ = 0;
  StorageLoader storage_;
  std::unordered_set<std::string> allowed_;  // the caller's extra globals
  std::uint64_t max_objects_, max_memo_, max_depth_;
  std::uint64_t objects_ = 0, encoded_ = 0;
  std::vector<Object*> stack_;
  std::vector<std::size_t> marks_;
  std::vector<Object*> memo_;
  std::unordered_map<std::uint64_t, Object*> sparse_memo_;
  std::uint64_t memo_entries_ = 0;
};

const CheckpointTensor& tensor_of(const Arena& arena, const Object* o) { return arena.tensors.at(static_cast<std::size_t>(o->integer)); }

// The first dict whose values are tensors, looking through the usual wrappers. The object graph may hold cycles
// (through the memo) and any depth: visited dicts are not entered again, and the depth is bounded.
bool find_state_dict(const Arena& arena, const Object* value, const std::string& path, std::size_t depth,
                     std::unordered_set<const Object*>& visited, Checkpoint& out) {
  if (value->kind != Object::Kind::Dict || !visited.insert(value).second) return false;
  check_input_limit(InputLimit::PickleNesting, depth, "the dicts around its state dict");
  const auto& e = value->items;  // key, value, key, value...
  bool has_tensors = false;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2)
    has_tensors |= e[i]->kind == Object::Kind::Text && e[i + 1]->kind == Object::Kind::Tensor;
  if (has_tensors) {
    out.nesting = path;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2)
      if (e[i]->kind == Object::Kind::Text && e[i + 1]->kind == Object::Kind::Tensor) out.tensors[e[i]->text] = tensor_of(arena, e[i + 1]);
    return true;
  }
  for (const char* key : {"model", "state_dict", "teacher", "module", "model_state_dict"})
    for (std::size_t i = 0; i + 1 < e.size(); i += 2)
      if (e[i]->kind == Object::Kind::Text && e[i]->text == key &&
          find_state_dict(arena, e[i + 1], path.empty() ? key : path + "." + key, depth + 1, visited, out))
        return true;
  return false;
}

// Runs the archive's data.pkl; the tensors it returns own their storages' bytes.
const Object* unpickle_archive(const std::string& bytes, Arena& arena, const std::vector<std::string>& allowed_globals) {
  const auto entries = read_zip(bytes);
  std::string prefix;
  for (const auto& [file, entry] : entries)
    if (file.size() >= 9 && file.compare(file.size() - 9, 9, "/data.pkl") == 0) prefix = file.substr(0, file.size() - 8);
  if (prefix.empty()) throw std::runtime_error("no data.pkl inside: not a torch.save checkpoint");
  const ZipEntry& pickle = entries.at(prefix + "data.pkl");
  const std::string program = bytes.substr(pickle.data_offset, pickle.size);
  std::map<std::string, std::shared_ptr<const std::string>> storages;
  Unpickler unpickler(program, arena, [&](const std::string& key) {
    auto& s = storages[key];
    if (!s) {
      auto it = entries.find(prefix + "data/" + key);
      if (it == entries.end()) throw std::runtime_error("storage '" + key + "' is missing from the archive");
      s = std::make_shared<const std::string>(bytes.substr(it->second.data_offset, it->second.size));
    }
    return s;
  }, allowed_globals);
  return unpickler.run();
}

std::size_t element_size(const std::string& dtype) {
  return dtype == "F64" || dtype == "I64" ? 8 : dtype == "F32" || dtype == "I32" ? 4
         : dtype == "F16" || dtype == "BF16" || dtype == "I16" ? 2 : 1;
}

// Every tensor must lie inside its storage. Shapes, strides and offsets come from the file: no arithmetic on them
// may overflow, and what torch itself never writes (negative extents, strides or offsets) is refused.
void check_inside_storage(const std::string& key, CheckpointTensor& t) {
  const auto bad = [&](const std::string& why) { return std::runtime_error("tensor '" + key + "' " + why); };
  if (t.strides.size() != t.shape.size())
    throw bad("has " + std::to_string(t.shape.size()) + " dimensions and " + std::to_string(t.strides.size()) + " strides");
  if (t.offset < 0) throw bad("has a negative storage offset");
  for (std::size_t i = 0; i < t.shape.size(); ++i)
    if (t.shape[i] < 0 || t.strides[i] < 0) throw bad("has a negative extent or stride");
  for (const auto extent : t.shape)
    if (extent == 0) {
      t.offset = 0;  // no element: nothing to read (torch.zeros(0, D) has an empty storage), nowhere to point
      return;
    }
  std::int64_t last = t.offset;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    std::int64_t step = 0;
    if (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &step) || __builtin_add_overflow(last, step, &last))
      throw bad("has a shape and strides that reach beyond any storage");
  }
  std::uint64_t end = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(last) + 1, element_size(t.dtype), &end) || end > t.storage->size())
    throw bad("lies outside its storage");
}

// ------------------------------------------------------------------------------------------ writing

void put(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// A zip of stored entries, each entry's data 64-byte aligned as torch.save aligns it (padding in an extra field).
std::string write_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, directory;
  for (const auto& file : files) {
    const std::string& name = file.first;  // named references: lambdas cannot capture structured bindings before clang 16
    const std::string& data = file.second;
    if (data.size() >= 0xFFFFFFFFu) throw std::runtime_error("'" + name + "' is over 4 GiB: not supported by this writer");
    const std::uint64_t local = out.size();
    const std::size_t unpadded = local + 30 + name.size() + 4;
    const std::size_t padding = (64 - unpadded % 64) % 64;
    const std::uint32_t crc = crc32(data);
    const auto header = [&](std::string& h, bool central) {
      put(h, central ? 0x02014b50 : 0x04034b50, 4);
      if (central) put(h, 0, 2);  // version made by
      put(h, 0, 2);               // version needed
      put(h, 0, 2);               // flags
      put(h, 0, 2);               // stored
      put(h, 0, 4);               // time, date
      put(h, crc, 4);
      put(h, data.size(), 4);
      put(h, data.size(), 4);
      put(h, name.size(), 2);
      put(h, central ? 0 : 4 + padding, 2);  // extra field length
      if (central) {
        put(h, 0, 2), put(h, 0, 2), put(h, 0, 2), put(h, 0, 4);  // comment, disk, internal and external attributes
        put(h, local, 4);
      }
      h += name;
    };
    header(out, false);
    put(out, 0x4246, 2);  // "FB": the padding field torch.save uses
    put(out, padding, 2);
    out.append(padding, 'Z');
    out += data;
    header(directory, true);
  }
  const std::uint64_t directory_at = out.size();
  out += directory;
  put(out, 0x06054b50, 4);
  put(out, 0, 4);
  put(out, files.size(), 2), put(out, files.size(), 2);
  put(out, directory.size(), 4), put(out, directory_at, 4);
  put(out, 0, 2);
  return out;
}

// Pickle protocol 2 integers and strings.
void pickle_int(std::string& p, std::int64_t v) {
  if (v >= 0 && v < 256) {
    p += 'K', put(p, static_cast<std::uint64_t>(v), 1);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    p += 'J', put(p, static_cast<std::uint64_t>(v), 4);
  } else {
    p += '\x8a', put(p, 8, 1), put(p, static_cast<std::uint64_t>(v), 8);
  }
}
void pickle_text(std::string& p, const std::string& text) {
  p += 'X', put(p, text.size(), 4);
  p += text;
}
void pickle_ints(std::string& p, const std::vector<std::int64_t>& values) {
  p += '(';
  for (auto v : values) pickle_int(p, v);
  p += 't';
}

}  // namespace

bool looks_like_zip(const std::string& bytes) { return bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0; }

Checkpoint read_torch_checkpoint(const std::string& bytes, const std::string& name, const std::vector<std::string>& allowed_globals) {
  try {
    Checkpoint checkpoint;
    Arena arena;
    std::unordered_set<const Object*> visited;
    if (!find_state_dict(arena, unpickle_archive(bytes, arena, allowed_globals), "", 0, visited, checkpoint))
      throw std::runtime_error("it holds no dictionary of tensors (looked under model, state_dict, teacher, module, model_state_dict)");
    for (auto& [key, t] : checkpoint.tensors) check_inside_storage(key, t);
    return checkpoint;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read PyTorch checkpoint '" + name + "': " + e.what());
  }
}

CheckpointTensor read_torch_tensor(const std::string& bytes, const std::string& name) {
  try {
    if (!looks_like_zip(bytes)) throw std::runtime_error("not a zip archive (torch.save of PyTorch >= 1.6 writes one)");
    Arena arena;
    const Object* value = unpickle_archive(bytes, arena, {});
    if (value->kind != Object::Kind::Tensor) throw std::runtime_error("it holds no tensor at the top (torch.save(tensor) writes one)");
    CheckpointTensor tensor = tensor_of(arena, value);
    check_inside_storage("tensor", tensor);
    return tensor;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read PyTorch tensor file '" + name + "': " + e.what());
  }
}

std::string write_torch_tensor(const std::vector<std::int64_t>& shape, const float* values, const std::string& archive) {
  std::int64_t count = 1;
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = count;
    count *= shape[i];
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, requires_grad, OrderedDict()), as torch.save pickles it.
  std::string p = "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += '(';
  pickle_text(p, "storage");
  p += "ctorch\nFloatStorage\n";
  pickle_text(p, "0");
  pickle_text(p, "cpu");
  pickle_int(p, count);
  p += "tQ";
  pickle_int(p, 0);
  pickle_ints(p, shape);
  pickle_ints(p, strides);
  p += "\x89" "ccollections\nOrderedDict\n)R";
  p += "tR.";
  std::string storage(reinterpret_cast<const char*>(values), static_cast<std::size_t>(count) * sizeof(float));
  return write_zip({{archive + "/data.pkl", p}, {archive + "/byteorder", "little"}, {archive + "/data/0", storage},
                    {archive + "/version", "3\n"}});
}

}  // namespace histoflow::torch_encoders
