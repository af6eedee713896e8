#include "histoflow/torch_encoders/weights.hpp"


#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/torch_checkpoint.hpp"

namespace histoflow::torch_encoders {
namespace {

torch::Dtype torch_dtype(const std::string& dtype, const std::string& tensor, const std::string& file) {
  if (dtype == "F32") return torch::kFloat32;
  if (dtype == "F16") return torch::kFloat16;
  if (dtype == "BF16") return torch::kBFloat16;
  if (dtype == "F64") return torch::kFloat64;
  if (dtype == "I64") return torch::kInt64;
  if (dtype == "I32") return torch::kInt32;
  if (dtype == "U8") return torch::kUInt8;
  if (dtype == "I16") return torch::kInt16;
  if (dtype == "I8") return torch::kInt8;
  if (dtype == "BOOL") return torch::kBool;
  throw std::runtime_error("'" + file + "': tensor '" + tensor + "' has dtype " + dtype + ", which no backbone uses");
}

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

std::uint64_t splitmix(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

LoadedWeights read_weights(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read weights '" + file.string() + "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  LoadedWeights w;
  w.sha256 = sha256_hex(bytes);
  if (looks_like_zip(bytes)) {
    w.format = "pytorch";
    const Checkpoint checkpoint = read_torch_checkpoint(bytes, file.string());
    w.nesting = checkpoint.nesting;
    for (const auto& [name, t] : checkpoint.tensors) {
      const torch::Dtype dtype = torch_dtype(t.dtype, name, file.string());
      const auto element = static_cast<std::int64_t>(c10::elementSize(dtype));
      // The storage outlives the view only until clone() makes the tensor own its memory.
      auto view = torch::from_blob(const_cast<char*>(t.storage->data()) + t.offset * element, t.shape, t.strides,
                                   torch::TensorOptions().dtype(dtype));
      w.tensors.emplace(name, view.clone());
    }
    return w;
  }
  // A legacy pickle starts with PROTO (0x80) and a protocol byte; a safetensors file starts with its header's
  // length, whose low byte may be 0x80 as well: the header's '{' after the 8 length bytes tells them apart.
  const bool safetensors_header = bytes.size() > 8 && bytes[8] == '{';
  if (!safetensors_header && bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80)
    throw std::runtime_error("'" + file.string() + "' is a legacy (pre-1.6) PyTorch checkpoint: re-save it with torch.save, "
                             "or convert it to safetensors");
  w.format = "safetensors";
  const SafetensorsHeader header = parse_safetensors(bytes, file.string());
  w.metadata = header.metadata;
  for (const auto& [name, entry] : header.tensors) {
    auto tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(torch_dtype(entry.dtype, name, file.string())));
    std::memcpy(tensor.data_ptr(), bytes.data() + header.data_start + entry.begin, entry.end - entry.begin);
    w.tensors.emplace(name, std::move(tensor));
  }
  return w;
}

namespace {

// The strict match of load_into: the checkpoint in the backbone's layout, the prefix that finds its keys, and the
// module's tensors by name (resized where the backbone takes a shape from the checkpoint).
struct Match {
  StateDict tensors;
  std::string prefix;
  std::map<std::string, torch::Tensor> expected;
};

Match match(Backbone& backbone, const LoadedWeights& weights, const std::filesystem::path& file) {
  Match m{weights.tensors, "", {}};  // shallow copies: the backbone may rename them into its own layout
  auto& [tensors, prefix, expected] = m;
  torch::nn::Module& module = backbone.module();
  backbone.adapt_checkpoint(tensors, file.string());
  for (const auto& p : module.named_parameters(true)) expected[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) expected[b.key()] = b.value();
  // The prefix that finds most of the expected keys wins; the teacher before the student.
  std::size_t best = 0;
  for (const std::string candidate : {"", "teacher.backbone.", "backbone.", "module.", "model.", "student.backbone.", "module.backbone.", "vit."}) {
    std::size_t found = 0;
    for (const auto& [key, unused] : expected) found += tensors.count(candidate + key);
    if (found > best) best = found, prefix = candidate;
  }
  backbone.fit_to_checkpoint(tensors, prefix);  // set_data: the tensors in `expected` see the new shapes
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [key, target] : expected) {
    auto it = tensors.find(prefix + key);
    if (it == tensors.end()) {
      missing.push_back(key);
      continue;
    }
    if (it->second.sizes() != target.sizes()) {
      std::ostringstream text;
      text << key << " (file " << it->second.sizes() << ", model " << target.sizes() << ")";
      mismatched.push_back(text.str());
    }
  }
  for (const auto& [key, tensor] : tensors) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;  // other parts of a training checkpoint
    const std::string local = key.substr(prefix.size());
    if (!expected.count(local) && !backbone.ignorable_key(local)) unexpected.push_back(local);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream text;
    text << "weights '" << file.string() << "' do not fit this backbone (key prefix '" << prefix << "'):";
    const auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      text << "\n  " << keys.size() << " " << what << ":";
      for (std::size_t i = 0; i < keys.size() && i < 40; ++i) text << " " << keys[i];
      if (keys.size() > 40) text << " ...";
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("with another shape", mismatched);
    throw std::runtime_error(text.str());
  }
  return m;
}

}  // namespace

std::string load_into(Backbone& backbone, const LoadedWeights& weights, const std::filesystem::path& file) {
  const Match m = match(backbone, weights, file);
  torch::NoGradGuard no_grad;
  for (const auto& [key, target] : m.expected) target.copy_(m.tensors.at(m.prefix + key));
  return m.prefix;
}

std::string check_fits(Backbone& backbone, const LoadedWeights& weights, const std::filesystem::path& file) {
  return match(backbone, weights, file).prefix;
}

torch::Tensor deterministic_values(const std::string& name, const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  const std::uint64_t seed = fnv1a(name);
  auto out = torch::empty(shape, torch::kFloat32);
  float* data = out.data_ptr<float>();
  const double fan_in = shape.empty() ? 1.0 : static_cast<double>(n) / static_cast<double>(shape[0]);
  const bool one_d = shape.size() == 1;
  // What the name says the values are, decided once per tensor (not per element: ViT-g has 1.1e9 of them).
  enum class Kind { RunningVar, RunningMean, Scale, Shift, Uniform };
  const Kind kind = ends_with(name, "running_var")                                           ? Kind::RunningVar
                    : ends_with(name, "running_mean")                                        ? Kind::RunningMean
                    : one_d && (ends_with(name, ".weight") || ends_with(name, ".gamma")) ? Kind::Scale
                    : one_d && ends_with(name, ".bias")                                      ? Kind::Shift
                                                                                             : Kind::Uniform;
  const double bound = std::sqrt(3.0 / (one_d ? static_cast<double>(n) : fan_in));
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(splitmix(seed, static_cast<std::uint64_t>(i)) >> 11) * 0x1.0p-53;
    const double v = 2 * u - 1;
    double value;
    switch (kind) {
      case Kind::RunningVar: value = 1 + 0.5 * u; break;
      case Kind::RunningMean: value = 0.1 * v; break;
      case Kind::Scale: value = 1 + 0.1 * v; break;
      case Kind::Shift: value = 0.1 * v; break;
      default: value = v * bound;
    }
    data[i] = static_cast<float>(value);
  }
  return out;
}

torch::Tensor deterministic_bytes(const std::string& name, const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  const std::uint64_t seed = fnv1a(name);
  auto out = torch::empty(shape, torch::kUInt8);
  auto* data = out.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(splitmix(seed, static_cast<std::uint64_t>(i)) >> 56);
  return out;
}

std::uint64_t deterministic_word(const std::string& name, std::uint64_t index) { return splitmix(fnv1a(name), index); }

void deterministic_init(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters(true)) p.value().copy_(deterministic_values(p.key(), p.value().sizes().vec()));
  for (auto& b : module.named_buffers(true)) {
    if (ends_with(b.key(), "num_batches_tracked")) b.value().zero_();
    else b.value().copy_(deterministic_values(b.key(), b.value().sizes().vec()));
  }
}

}  // namespace histoflow::torch_encoders
