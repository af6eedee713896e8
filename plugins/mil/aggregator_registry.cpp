// The one aggregator registry of the process (it lives in libhistoflow_mil.so, shared by every MIL plugin).
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>

#include "builtin_aggregators.hpp"

namespace histoflow::mil {
namespace {

std::map<std::string, AggregatorSpec> builtin() {
  std::map<std::string, AggregatorSpec> r;
  const auto add = [&](std::string name, std::string description, bool attention,
                       std::shared_ptr<Aggregator> (*create)(const AggregatorOptions&)) {
    r.emplace(name, AggregatorSpec{name, std::move(description), attention, create});
  };
  add("mean_mlp", "Mean pooling of the tile features, then a one-hidden-layer MLP", false, make_mean_mlp);
  add("gated_attention", "Gated attention MIL (Ilse et al. 2018): attention-weighted mean of projected tiles", true,
      make_gated_attention);
  add("clam_sb", "CLAM single-branch (Lu et al. 2021): gated attention plus an instance-level clustering loss", true,
      make_clam_sb);
  add("transmil", "TransMIL (Shao et al. 2021): two self-attention layers with a pyramid position encoding (PPEG)",
      false, make_transmil);
  add("transformer", "Transformer aggregator (Wagner et al. 2023, MSI): class token, 2 pre-norm layers, 8 heads", true,
      make_transformer);
  return r;
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, AggregatorSpec> specs = builtin();
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void register_aggregator(AggregatorSpec spec) {
  if (spec.name.empty() || !spec.create) throw std::invalid_argument("an aggregator needs a name and a create function");
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  const std::string name = spec.name;
  if (!r.specs.emplace(name, std::move(spec)).second)
    throw std::invalid_argument("aggregator '" + name + "' is registered twice");
}

const AggregatorSpec& find_aggregator(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.specs.find(name);
  if (it != r.specs.end()) return it->second;  // specs are never removed: the reference stays valid
  std::string known;
  for (const auto& [n, spec] : r.specs) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown aggregator '" + name + "'; known: " + known);
}

std::vector<std::string> aggregator_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, spec] : r.specs) names.push_back(name);
  return names;
}

torch::Tensor seeded_dropout(const torch::Tensor& x, double p, bool training, torch::Generator& generator) {
  if (!training || p <= 0) return x;
  // The mask is drawn on the CPU from the trainer's generator, then moved: the same mask on any device.
  auto keep = torch::empty(x.sizes(), torch::kFloat32).bernoulli_(1.0 - p, generator).to(x.device(), x.scalar_type());
  return x * keep / (1.0 - p);
}

void initialise_parameters(torch::nn::Module& module, torch::Generator& generator) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    const auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    // Drawn on the CPU, then copied: the same numbers whatever the device.
    torch::Tensor value = torch::empty(p.sizes(), torch::kFloat32);
    if (ends_with("bias")) {
      value.zero_();
    } else if (ends_with("weight") && p.dim() == 1) {
      value.fill_(1.0);  // normalisation layers
    } else if (ends_with("weight")) {
      const double fan_in = static_cast<double>(p.numel() / p.size(0));
      const double bound = 1.0 / std::sqrt(fan_in);  // nn.Linear's kaiming_uniform_(a=sqrt(5))
      value.uniform_(-bound, bound, generator);
    } else {
      value.normal_(0.0, 0.02, generator);  // learned tokens
    }
    p.copy_(value);
  }
}

}  // namespace histoflow::mil
