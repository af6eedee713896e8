#include "recompute_in_backward.hpp"

namespace histoflow::mil {
namespace {

// What the backward pass needs to run the layer again; travels in the autograd context as a capsule.
struct Rerun : torch::CustomClassHolder {
  RecomputableLayer layer;
  torch::Generator generator_before;  // a copy of the generator's state before the first run
  std::vector<torch::Tensor> parameters;
};

struct RecomputeFunction : torch::autograd::Function<RecomputeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, at::TensorList,
                               const c10::intrusive_ptr<Rerun>& rerun, torch::Generator* generator) {
    rerun->generator_before = generator->clone();
    ctx->saved_data["rerun"] = c10::IValue::make_capsule(rerun);
    ctx->save_for_backward({input});
    return rerun->layer(input, *generator);  // grad mode is off here: nothing kept
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto capsule = ctx->saved_data["rerun"].toCapsule();
    const auto& rerun = static_cast<const Rerun&>(*capsule);
    const std::size_t parameter_count = rerun.parameters.size();
    torch::autograd::variable_list result(1 + parameter_count + 2);  // input, parameters, rerun, generator
    if (!grads[0].defined()) return result;
    const auto input = ctx->get_saved_variables()[0].detach().requires_grad_(ctx->needs_input_grad(0));
    torch::Generator generator = rerun.generator_before.clone();
    torch::Tensor output;
    {
      torch::AutoGradMode enable_grad(true);
      output = rerun.layer(input, generator);
    }
    std::vector<torch::Tensor> wrt;
    std::vector<std::size_t> position;  // in `result`
    if (input.requires_grad()) wrt.push_back(input), position.push_back(0);
    for (std::size_t i = 0; i < parameter_count; ++i)
      if (rerun.parameters[i].requires_grad()) wrt.push_back(rerun.parameters[i]), position.push_back(1 + i);
    if (wrt.empty()) return result;
    const auto gradients = torch::autograd::grad({output}, wrt, {grads[0]}, /*retain_graph=*/false,
                                                 /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t i = 0; i < wrt.size(); ++i) result[position[i]] = gradients[i];
    return result;
  }
};

}  // namespace

torch::Tensor recompute_in_backward(RecomputableLayer layer, const torch::Tensor& input,
                                    const std::vector<torch::Tensor>& parameters, torch::Generator& generator) {
  auto rerun = c10::make_intrusive<Rerun>();
  rerun->layer = std::move(layer);
  rerun->parameters = parameters;
  return RecomputeFunction::apply(input, at::TensorList(parameters), rerun, &generator);
}

}  // namespace histoflow::mil
