#include "histoflow/torch_encoders/torch_checkpoint.hpp"

#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "histoflow/crc32.hpp"

namespace histoflow::torch_encoders {
namespace {

// ------------------------------------------------------------------------------------------ zip archive

struct ZipEntry {
  std::uint64_t data_offset = 0;
  std::uint64_t size = 0;
};

std::uint64_t le(const std::string& b, std::size_t at, int bytes) {
  if (at + static_cast<std::size_t>(bytes) > b.size()) throw std::out_of_range("zip structure runs past the end of the file");
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
    count = le(b, eocd64 + 32, 8);
    directory = le(b, eocd64 + 48, 8);
  }
  std::map<std::string, ZipEntry> entries;
  std::uint64_t at = directory;
  for (std::uint64_t n = 0; n < count; ++n) {
    if (le(b, at, 4) != 0x02014b50) throw std::runtime_error("damaged zip directory");
    const auto method = le(b, at + 10, 2);
    std::uint64_t size = le(b, at + 24, 4), local = le(b, at + 42, 4);
    const auto name_length = le(b, at + 28, 2), extra_length = le(b, at + 30, 2), comment_length = le(b, at + 32, 2);
    const std::string name = b.substr(at + 46, name_length);
    for (std::uint64_t e = at + 46 + name_length; e + 4 <= at + 46 + name_length + extra_length;) {
      const auto id = le(b, e, 2), length = le(b, e + 2, 2);
      if (id == 0x0001) {  // ZIP64 sizes and offset, in the order of the fields that overflowed
        std::uint64_t field = e + 4;
        if (le(b, at + 24, 4) == 0xffffffff) size = le(b, field, 8), field += 8;
        if (le(b, at + 20, 4) == 0xffffffff) field += 8;
        if (le(b, at + 42, 4) == 0xffffffff) local = le(b, field, 8);
      }
      e += 4 + length;
    }
    if (method != 0) throw std::runtime_error("zip entry '" + name + "' is compressed; torch.save writes stored entries");
    if (le(b, local, 4) != 0x04034b50) throw std::runtime_error("damaged zip entry '" + name + "'");
    const std::uint64_t data = local + 30 + le(b, local + 26, 2) + le(b, local + 28, 2);
    if (data + size > b.size()) throw std::runtime_error("zip entry '" + name + "' runs past the end of the file (truncated?)");
    entries[name] = {data, size};
    at += 46 + name_length + extra_length + comment_length;
  }
  return entries;
}

// ------------------------------------------------------------------------------------------ pickle

struct Object;
using Ref = std::shared_ptr<Object>;

struct Object {
  enum class Kind { None, Bool, Int, Float, Text, Tuple, List, Dict, Global, Storage, Tensor, Opaque } kind = Kind::None;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;                           // Text, Global ("module.name"), Storage (key), Opaque (class)
  std::vector<Ref> items;                     // Tuple, List, Opaque (arguments)
  std::vector<std::pair<Ref, Ref>> entries;   // Dict, in insertion order
  std::string dtype;                          // Storage
  CheckpointTensor tensor;                    // Tensor
};

Ref make(Object::Kind kind) {
  auto o = std::make_shared<Object>();
  o->kind = kind;
  return o;
}

std::string storage_dtype(const std::string& type) {
  static const std::map<std::string, std::string> names = {
      {"torch.FloatStorage", "F32"}, {"torch.DoubleStorage", "F64"}, {"torch.HalfStorage", "F16"},
      {"torch.BFloat16Storage", "BF16"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
      {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"}, {"torch.ByteStorage", "U8"}, {"torch.BoolStorage", "BOOL"}};
  auto it = names.find(type);
  if (it == names.end()) throw std::runtime_error("storage type '" + type + "' is not supported");
  return it->second;
}

std::vector<std::int64_t> integers(const Ref& tuple) {
  std::vector<std::int64_t> out;
  for (const auto& i : tuple->items) out.push_back(i->integer);
  return out;
}

class Unpickler {
 public:
  Unpickler(const std::string& data, std::function<std::shared_ptr<const std::string>(const std::string&)> storage)
      : d_(data), storage_(std::move(storage)) {}

  Ref run() {
    for (;;) {
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
        case 0x8a: push(integer(long_bytes(static_cast<unsigned char>(byte())))); break;  // LONG1
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
        case 0x8d: push(text(le(d_, advance(8), 8))); break;          // BINUNICODE8
        case 'T': case 'B': push(text(le32())); break;                // BINSTRING, BINBYTES
        case 'U': case 'C': push(text(static_cast<unsigned char>(byte()))); break;
        case ')': push(make(Object::Kind::Tuple)); break;
        case ']': push(make(Object::Kind::List)); break;
        case '}': push(make(Object::Kind::Dict)); break;
        case 't': case 'l': {
          auto o = make(op == 't' ? Object::Kind::Tuple : Object::Kind::List);
          o->items = pop_to_mark();
          push(o);
          break;
        }
        case 'd': {
          auto o = make(Object::Kind::Dict);
          auto items = pop_to_mark();
          for (std::size_t i = 0; i + 1 < items.size(); i += 2) o->entries.emplace_back(items[i], items[i + 1]);
          push(o);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto o = make(Object::Kind::Tuple);
          o->items.resize(op - 0x84);
          for (auto it = o->items.rbegin(); it != o->items.rend(); ++it) *it = pop();
          push(o);
          break;
        }
        case 'a': {
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto items = pop_to_mark();
          auto& list = top()->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          auto v = pop(), k = pop();
          top()->entries.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto items = pop_to_mark();
          for (std::size_t i = 0; i + 1 < items.size(); i += 2) top()->entries.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'q': memo_[static_cast<unsigned char>(byte())] = top(); break;  // BINPUT
        case 'r': memo_[le32()] = top(); break;                             // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;                      // MEMOIZE
        case 'h': push(memo(static_cast<unsigned char>(byte()))); break;    // BINGET
        case 'j': push(memo(le32())); break;                                // LONG_BINGET
        case 'c': {                                                         // GLOBAL
          const std::string module = line(), name = line();
          auto g = make(Object::Kind::Global);
          g->text = module + "." + name;
          push(g);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          auto g = make(Object::Kind::Global);
          g->text = module->text + "." + name->text;
          push(g);
          break;
        }
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'R': {
          auto args = pop(), callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(), cls = pop();
          push(reduce(cls, args));
          break;
        }
        case 'b': {  // BUILD: state of an object; dicts (OrderedDict._metadata) and opaque objects ignore it
          pop();
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          throw std::runtime_error(std::string("unsupported pickle opcode ") + hex + " at byte " + std::to_string(pos_ - 1));
        }
      }
    }
  }

 private:
  char byte() {
    if (pos_ >= d_.size()) throw std::runtime_error("the pickle ends before its STOP (truncated?)");
    return d_[pos_++];
  }
  std::size_t advance(std::size_t n) {
    if (pos_ + n > d_.size()) throw std::runtime_error("the pickle ends early (truncated?)");
    pos_ += n;
    return pos_ - n;
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
  std::int64_t long_bytes(std::size_t n) {
    const std::size_t at = advance(n);
    if (n == 0) return 0;
    if (n > 8) throw std::runtime_error("integer too large in the pickle");
    std::uint64_t v = le(d_, at, static_cast<int>(n));
    if (n < 8 && (static_cast<unsigned char>(d_[at + n - 1]) & 0x80)) v |= ~std::uint64_t{0} << (8 * n);  // sign
    return static_cast<std::int64_t>(v);
  }
  Ref text(std::uint64_t n) {
    auto o = make(Object::Kind::Text);
    o->text = d_.substr(advance(static_cast<std::size_t>(n)), static_cast<std::size_t>(n));
    return o;
  }
  static Ref integer(std::int64_t v) {
    auto o = make(Object::Kind::Int);
    o->integer = v;
    return o;
  }
  static Ref boolean(bool v) {
    auto o = make(Object::Kind::Bool);
    o->integer = v;
    return o;
  }
  void push(Ref o) { stack_.push_back(std::move(o)); }
  Ref pop() {
    if (stack_.empty()) throw std::runtime_error("malformed pickle: the stack is empty");
    Ref o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  Ref& top() {
    if (stack_.empty()) throw std::runtime_error("malformed pickle: the stack is empty");
    return stack_.back();
  }
  Ref memo(std::size_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) throw std::runtime_error("malformed pickle: unknown memo entry");
    return it->second;
  }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) throw std::runtime_error("malformed pickle: no MARK");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  // ('storage', <storage type>, key, location, numel)
  Ref persistent(const Ref& id) {
    if (id->kind != Object::Kind::Tuple || id->items.size() < 5 || id->items[0]->text != "storage")
      throw std::runtime_error("unexpected persistent id in the pickle");
    auto s = make(Object::Kind::Storage);
    s->dtype = storage_dtype(id->items[1]->text);
    s->text = id->items[2]->text;
    s->integer = id->items[4]->integer;
    return s;
  }

  Ref reduce(const Ref& callable, const Ref& args) {
    const std::string& name = callable->text;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const Ref& storage = args->items.at(0);
      if (storage->kind != Object::Kind::Storage) throw std::runtime_error("a tensor without a storage in the pickle");
      auto t = make(Object::Kind::Tensor);
      t->tensor.dtype = storage->dtype;
      t->tensor.offset = args->items.at(1)->integer;
      t->tensor.shape = integers(args->items.at(2));
      t->tensor.strides = integers(args->items.at(3));
      t->tensor.storage = storage_(storage->text);
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") return args->items.at(0);
    // LibTorch's pickler (torch::pickle_save) tags typed containers: restore_type_tag(value, "Dict[str, Tensor]").
    if (name == "torch.jit._pickle.restore_type_tag") return args->items.at(0);
    if (name == "collections.OrderedDict") {
      auto d = make(Object::Kind::Dict);
      if (!args->items.empty() && args->items[0]->kind == Object::Kind::List)
        for (const auto& pair : args->items[0]->items) d->entries.emplace_back(pair->items.at(0), pair->items.at(1));
      return d;
    }
    auto o = make(Object::Kind::Opaque);  // something else training code saved: kept, never interpreted
    o->text = name;
    o->items = args->items;
    return o;
  }

  const std::string& d_;
  std::size_t pos_ = 0;
  std::function<std::shared_ptr<const std::string>(const std::string&)> storage_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::size_t, Ref> memo_;
};

// The first dict whose values are tensors, looking through the usual wrappers.
bool find_state_dict(const Ref& value, const std::string& path, Checkpoint& out) {
  if (value->kind != Object::Kind::Dict) return false;
  bool has_tensors = false;
  for (const auto& [k, v] : value->entries) has_tensors |= k->kind == Object::Kind::Text && v->kind == Object::Kind::Tensor;
  if (has_tensors) {
    out.nesting = path;
    for (const auto& [k, v] : value->entries)
      if (k->kind == Object::Kind::Text && v->kind == Object::Kind::Tensor) out.tensors[k->text] = v->tensor;
    return true;
  }
  for (const char* key : {"model", "state_dict", "teacher", "module", "model_state_dict"})
    for (const auto& [k, v] : value->entries)
      if (k->kind == Object::Kind::Text && k->text == key && find_state_dict(v, path.empty() ? key : path + "." + key, out))
        return true;
  return false;
}

// Runs the archive's data.pkl; the tensors it returns own their storages' bytes.
Ref unpickle_archive(const std::string& bytes) {
  const auto entries = read_zip(bytes);
  std::string prefix;
  for (const auto& [file, entry] : entries)
    if (file.size() >= 9 && file.compare(file.size() - 9, 9, "/data.pkl") == 0) prefix = file.substr(0, file.size() - 8);
  if (prefix.empty()) throw std::runtime_error("no data.pkl inside: not a torch.save checkpoint");
  const ZipEntry& pickle = entries.at(prefix + "data.pkl");
  const std::string program = bytes.substr(pickle.data_offset, pickle.size);
  std::map<std::string, std::shared_ptr<const std::string>> storages;
  Unpickler unpickler(program, [&](const std::string& key) {
    auto& s = storages[key];
    if (!s) {
      auto it = entries.find(prefix + "data/" + key);
      if (it == entries.end()) throw std::runtime_error("storage '" + key + "' is missing from the archive");
      s = std::make_shared<const std::string>(bytes.substr(it->second.data_offset, it->second.size));
    }
    return s;
  });
  return unpickler.run();
}

std::size_t element_size(const std::string& dtype) {
  return dtype == "F64" || dtype == "I64" ? 8 : dtype == "F32" || dtype == "I32" ? 4
         : dtype == "F16" || dtype == "BF16" || dtype == "I16" ? 2 : 1;
}

// Every tensor must lie inside its storage.
void check_inside_storage(const std::string& key, const CheckpointTensor& t) {
  for (const auto extent : t.shape)
    if (extent == 0) return;  // no element: nothing to read (torch.zeros(0, D) has an empty storage)
  std::int64_t last = t.offset;
  for (std::size_t i = 0; i < t.shape.size(); ++i)
    if (t.shape[i] > 0) last += (t.shape[i] - 1) * t.strides.at(i);
  if (t.offset < 0 || static_cast<std::size_t>(last + 1) * element_size(t.dtype) > t.storage->size())
    throw std::runtime_error("tensor '" + key + "' lies outside its storage");
}

// ------------------------------------------------------------------------------------------ writing

void put(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

// A zip of stored entries, each entry's data 64-byte aligned as torch.save aligns it (padding in an extra field).
std::string write_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, directory;
  for (const auto& [name, data] : files) {
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

Checkpoint read_torch_checkpoint(const std::string& bytes, const std::string& name) {
  try {
    Checkpoint checkpoint;
    if (!find_state_dict(unpickle_archive(bytes), "", checkpoint))
      throw std::runtime_error("it holds no dictionary of tensors (looked under model, state_dict, teacher)");
    for (const auto& [key, t] : checkpoint.tensors) check_inside_storage(key, t);
    return checkpoint;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read PyTorch checkpoint '" + name + "': " + e.what());
  }
}

CheckpointTensor read_torch_tensor(const std::string& bytes, const std::string& name) {
  try {
    if (!looks_like_zip(bytes)) throw std::runtime_error("not a zip archive (torch.save of PyTorch >= 1.6 writes one)");
    const Ref value = unpickle_archive(bytes);
    if (value->kind != Object::Kind::Tensor) throw std::runtime_error("it holds no tensor at the top (torch.save(tensor) writes one)");
    check_inside_storage("tensor", value->tensor);
    return value->tensor;
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
