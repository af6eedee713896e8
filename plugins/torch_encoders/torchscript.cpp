#include "torchscript.hpp"

#include <torch/script.h>

namespace histoflow::torch_encoders {
namespace {

class TorchScriptBackbone final : public Backbone {
 public:
  explicit TorchScriptBackbone(torch::jit::script::Module module) : module_(std::move(module)) {}
  torch::nn::Module& module() override { throw std::logic_error("a TorchScript model has no C++ module parameters"); }
  bool ignorable_key(const std::string&) const override { return false; }
  void prepare(torch::Device device, torch::Dtype dtype, bool) override {
    module_.to(device, dtype);
    module_.eval();
  }
  BackboneOutput forward(const torch::Tensor& images) override {
    BackboneOutput out;
    const c10::IValue result = module_.forward({images});
    if (!result.isTensor()) throw std::runtime_error("the TorchScript model returned something other than one tensor");
    out.pooled = result.toTensor().flatten(1);
    return out;
  }

 private:
  torch::jit::script::Module module_;
};

}  // namespace

std::unique_ptr<Backbone> load_torchscript(const std::filesystem::path& file) {
  try {
    return std::make_unique<TorchScriptBackbone>(torch::jit::load(file.string(), torch::kCPU));
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw std::runtime_error("cannot load TorchScript model '" + file.string() + "': " + what.substr(0, what.find('\n')));
  }
}

}  // namespace histoflow::torch_encoders
