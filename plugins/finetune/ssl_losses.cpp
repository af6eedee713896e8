#include "ssl_losses.hpp"

namespace histoflow::finetune {
namespace F = torch::nn::functional;

namespace {

class SoftCrossEntropy : public torch::autograd::Function<SoftCrossEntropy> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& student, const torch::Tensor& targets, double scale) {
    const auto blocks = student.size(0) / targets.size(0);
    const auto x = student.to(torch::kFloat).mul(scale);
    const auto lse = torch::logsumexp(x, -1);                   // [C R]
    const auto row_sums = targets.sum(-1);                      // [R]
    const auto products = x.view({blocks, targets.numel()}).mv(targets.reshape({-1}));  // [C]
    ctx->save_for_backward({student, targets, lse, row_sums});
    ctx->saved_data["scale"] = scale;
    return products.sum() - (lse.view({blocks, -1}) * row_sums.unsqueeze(0)).sum();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto &student = saved[0], &targets = saved[1], &lse = saved[2], &row_sums = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto blocks = student.size(0) / targets.size(0);
    // d/ds = scale * (T - softmax(scale s) * sum_k T), times the incoming gradient.
    auto p = student.to(torch::kFloat).mul(scale).sub_(lse.unsqueeze(1)).exp_();
    auto view = p.view({blocks, targets.size(0), targets.size(1)});
    view.mul_(row_sums.view({1, -1, 1})).sub_(targets.unsqueeze(0)).mul_(grad[0] * -scale);
    return {p.to(student.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor soft_cross_entropy(const torch::Tensor& student, const torch::Tensor& targets, double student_temp) {
  TORCH_CHECK(student.dim() == 2 && targets.dim() == 2 && student.size(1) == targets.size(1) && student.size(0) % targets.size(0) == 0,
              "soft_cross_entropy: student rows must stack whole blocks of the targets' rows");
  return SoftCrossEntropy::apply(student, targets.to(torch::kFloat).detach().contiguous(), 1.0 / student_temp);
}

torch::Tensor dino_cross_entropy(const torch::Tensor& student, const torch::Tensor& teacher_sum, double student_temp) {
  return -soft_cross_entropy(student, teacher_sum, student_temp) / static_cast<double>(teacher_sum.size(0));
}

torch::Tensor sinkhorn_knopp(const torch::Tensor& teacher_logits, double teacher_temp, int iterations, double samples,
                             const std::function<void(torch::Tensor&)>& sum_over_processes) {
  torch::NoGradGuard no_grad;
  auto e = torch::exp(teacher_logits.to(torch::kFloat) * (1.0 / teacher_temp));  // B x K
  const auto prototypes = static_cast<double>(e.size(1));
  auto a = torch::ones({e.size(1)}, e.options());  // per prototype
  auto b = torch::ones({e.size(0)}, e.options());  // per sample
  for (int i = 0; i < iterations; ++i) {
    a = torch::mv(e.t(), b);  // each prototype's column sum, over every process's rows
    if (sum_over_processes) sum_over_processes(a);
    a.mul_(prototypes).reciprocal_();  // each prototype carries 1/K
    b = torch::mv(e, a).mul_(samples).reciprocal_();          // each sample carries 1/B
  }
  return e.mul_(a.unsqueeze(0)).mul_(b.mul_(samples).unsqueeze(1));
}

SoftmaxCentre::SoftmaxCentre(std::vector<std::int64_t> shape, double momentum) : centre_(torch::zeros(shape)), momentum_(momentum) {}

torch::Tensor SoftmaxCentre::centre_and_sharpen(const torch::Tensor& teacher_logits, double teacher_temp) {
  torch::NoGradGuard no_grad;
  apply_pending();
  return torch::softmax((teacher_logits - centre_) / teacher_temp, -1);
}

void SoftmaxCentre::record_update(const torch::Tensor& batch_sum, std::int64_t rows) {
  pending_sum_ = batch_sum.detach().clone();
  pending_rows_ = rows;
}

void SoftmaxCentre::apply_pending() {
  if (!pending_sum_.defined()) return;
  torch::NoGradGuard no_grad;
  const auto batch_centre = pending_sum_ / static_cast<double>(pending_rows_);
  centre_ = centre_ * momentum_ + batch_centre * (1.0 - momentum_);
  pending_sum_ = torch::Tensor();
  pending_rows_ = 0;
}

void SoftmaxCentre::restore(torch::Tensor centre, torch::Tensor pending_sum, std::int64_t pending_rows) {
  centre_ = std::move(centre);
  pending_sum_ = std::move(pending_sum);
  pending_rows_ = pending_rows;
}

void SoftmaxCentre::to(torch::Device device) {
  centre_ = centre_.to(device);
  if (pending_sum_.defined()) pending_sum_ = pending_sum_.to(device);
}

torch::Tensor ibot_masked_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& patch_weights,
                               std::int64_t images, double student_temp) {
  // sum_rows w_r sum_k t_rk lsm_rk: the patch weights go into the targets.
  return -soft_cross_entropy(student, teacher * patch_weights.unsqueeze(1), student_temp) / static_cast<double>(images);
}

torch::Tensor koleo_loss(const torch::Tensor& features, double eps, double distance_eps) {
  const auto x = F::normalize(features.to(torch::kFloat), F::NormalizeFuncOptions().p(2).dim(-1).eps(eps));
  torch::Tensor nearest;
  {
    torch::NoGradGuard no_grad;
    auto dots = torch::mm(x, x.t());
    dots.fill_diagonal_(-1);
    nearest = std::get<1>(torch::max(dots, 1));
  }
  const auto distances = F::pairwise_distance(x, x.index_select(0, nearest), F::PairwiseDistanceFuncOptions().p(2).eps(distance_eps));
  return -torch::log(distances + eps).mean();
}

}  // namespace histoflow::finetune
