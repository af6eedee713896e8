#include "histoflow/patch_eval/linear_probe.hpp"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace histoflow::patch_eval {
namespace {

torch::Tensor view_of(const features::FeatureMatrix& m) {
  return torch::from_blob(const_cast<float*>(m.values.data()), {m.rows, m.dim}, torch::kFloat32);
}

torch::Tensor to_tensor(const std::vector<float>& v, std::vector<std::int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

torch::Tensor standardise(const features::FeatureMatrix& x, const LogisticModel& model) {
  return (view_of(x) - to_tensor(model.mean, {1, model.dim})) / to_tensor(model.scale, {1, model.dim});
}

}  // namespace

LogisticModel fit_logistic_regression(const features::FeatureMatrix& x, const std::vector<std::int64_t>& labels,
                                      std::int64_t classes, double lambda, const LogisticFitOptions& options,
                                      const LogisticModel* warm_start) {
  if (x.rows < 1 || static_cast<std::int64_t>(labels.size()) != x.rows)
    throw std::invalid_argument("linear probe: " + std::to_string(x.rows) + " rows and " + std::to_string(labels.size()) + " labels");
  if (!(lambda >= 0)) throw std::invalid_argument("linear probe: lambda must be >= 0, got " + std::to_string(lambda));
  if (options.threads > 0) at::set_num_threads(options.threads);

  LogisticModel model;
  model.dim = x.dim;
  model.classes = classes;
  model.lambda = lambda;
  const torch::Tensor raw = view_of(x);
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor mean = raw.mean(0);
    torch::Tensor scale = (raw - mean).square().mean(0).sqrt();
    scale = torch::where(scale > 0, scale, torch::ones_like(scale));  // constant feature: leave it as is
    model.mean = to_vector(mean);
    model.scale = to_vector(scale);
  }
  const torch::Tensor inputs = standardise(x, model);
  const torch::Tensor targets = torch::from_blob(const_cast<std::int64_t*>(labels.data()), {x.rows}, torch::kInt64);

  const bool warm = warm_start && warm_start->dim == x.dim && warm_start->classes == classes;
  torch::Tensor w = warm ? to_tensor(warm_start->weights, {classes, x.dim}) : torch::zeros({classes, x.dim});
  torch::Tensor b = warm ? to_tensor(warm_start->bias, {classes}) : torch::zeros({classes});
  w.set_requires_grad(true);
  b.set_requires_grad(true);

  torch::optim::LBFGS optimiser({w, b}, torch::optim::LBFGSOptions(1.0)
                                            .max_iter(options.max_iterations)
                                            .max_eval(options.max_iterations * 5 / 4 + 1)
                                            .tolerance_grad(options.gradient_tolerance)
                                            .tolerance_change(1e-12)
                                            .history_size(20)
                                            .line_search_fn("strong_wolfe"));
  std::int64_t evaluations = 0;
  auto closure = [&] {
    optimiser.zero_grad();
    const torch::Tensor logits = torch::addmm(b, inputs, w.t());
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, targets) + 0.5 * lambda * w.square().sum();
    loss.backward();
    ++evaluations;
    return loss;
  };
  optimiser.step(closure);
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = torch::addmm(b, inputs, w.t());
    model.loss = (torch::nn::functional::cross_entropy(logits, targets) + 0.5 * lambda * w.square().sum()).item<double>();
  }
  model.evaluations = evaluations;
  model.weights = to_vector(w);
  model.bias = to_vector(b);
  return model;
}

std::vector<std::int64_t> predict(const LogisticModel& model, const features::FeatureMatrix& x) {
  if (x.dim != model.dim)
    throw std::invalid_argument("linear probe: model has width " + std::to_string(model.dim) + ", features " + std::to_string(x.dim));
  torch::InferenceMode guard;
  const torch::Tensor logits =
      torch::addmm(to_tensor(model.bias, {model.classes}), standardise(x, model), to_tensor(model.weights, {model.classes, model.dim}).t());
  const torch::Tensor best = logits.argmax(1).contiguous();
  return {best.data_ptr<std::int64_t>(), best.data_ptr<std::int64_t>() + best.numel()};
}

}  // namespace histoflow::patch_eval
