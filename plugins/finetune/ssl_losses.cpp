#include "ssl_losses.hpp"

namespace histoflow::finetune {
namespace F = torch::nn::functional;

torch::Tensor dino_cross_entropy(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher, double student_temp) {
  torch::Tensor total = torch::zeros({}, student.front().options().dtype(torch::kFloat));
  for (const auto& s : student) {
    const auto lsm = torch::log_softmax(s.to(torch::kFloat) / student_temp, -1);
    for (const auto& t : teacher) total = total - torch::sum(t * lsm, -1).mean();
  }
  return total;
}

torch::Tensor sinkhorn_knopp(const torch::Tensor& teacher_logits, double teacher_temp, int iterations, double samples) {
  torch::NoGradGuard no_grad;
  auto q = torch::exp(teacher_logits.to(torch::kFloat) / teacher_temp).t();  // K x B, as in the paper's notation
  const auto prototypes = static_cast<double>(q.size(0));
  q.div_(q.sum());
  for (int i = 0; i < iterations; ++i) {
    q.div_(q.sum(1, true)).div_(prototypes);  // each prototype carries 1/K
    q.div_(q.sum(0, true)).div_(samples);     // each sample carries 1/B
  }
  return q.mul_(samples).t();
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
  const auto per_patch = torch::sum(teacher * torch::log_softmax(student.to(torch::kFloat) / student_temp, -1), -1);
  return -(per_patch * patch_weights).sum() / static_cast<double>(images);
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
