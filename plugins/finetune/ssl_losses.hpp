#pragma once
// The losses of DINOv2's self-supervised step, as in dinov2/loss/: the DINO cross-entropy over CLS tokens, the
// two ways of centring the teacher (softmax with an EMA centre, Sinkhorn-Knopp), iBOT's masked-patch loss and
// the KoLeo regulariser.
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace histoflow::finetune {

// sum over rows r and prototypes k of T[r mod R, k] * log_softmax(s_r / temp)_k, where `student` [C * R, K] stacks C
// blocks of the targets' R rows (targets carry no gradient). Fused: log_softmax = s/temp - logsumexp, so the
// forward writes nothing of [C R, K], and the gradient (T - softmax(s/temp) sum_k T) / temp is formed in one go.
torch::Tensor soft_cross_entropy(const torch::Tensor& student, const torch::Tensor& targets, double student_temp);

// The official DINOLoss.forward, -sum over student blocks s and teacher targets t of mean_rows(sum_k t *
// log_softmax(s / temp)), with the sum over teachers taken first: `student` stacks blocks of teacher_sum's rows
// (the local crops: n_local blocks against t_A + t_B).
torch::Tensor dino_cross_entropy(const torch::Tensor& student, const torch::Tensor& teacher_sum, double student_temp);

// Sinkhorn-Knopp over teacher logits [rows, K] (fp32): `samples` is the B of the official code (the rows of
// the whole batch for DINO, the masked patches for iBOT). The alternating normalisations only rescale rows and
// columns of E = exp(logits / temp), so they run on the two scaling vectors (two matrix-vector products per
// iteration) and E is scaled once at the end: Q = B diag(b) E diag(a). The official first division by sum(Q)
// cancels in the first normalisation.
// Data-parallel: `samples` counts every process's rows, and `sum_over_processes` (empty for one process) sums each
// prototype's column over the processes, as the official all-reduce does.
torch::Tensor sinkhorn_knopp(const torch::Tensor& teacher_logits, double teacher_temp, int iterations, double samples,
                             const std::function<void(torch::Tensor&)>& sum_over_processes = {});

// The softmax centre of the official DINOLoss / iBOTPatchLoss: the centre an update computes from this step's
// teacher output is applied at the next centring (the official code defers it to overlap an all-reduce).
class SoftmaxCentre {
 public:
  SoftmaxCentre(std::vector<std::int64_t> shape, double momentum);
  // softmax((t - centre) / temp) after applying any pending update.
  torch::Tensor centre_and_sharpen(const torch::Tensor& teacher_logits, double teacher_temp);
  // Records the update: the batch centre is batch_sum / rows (DINO: the sum over its rows; iBOT: the mean over
  // the masked patches, rows 1).
  void record_update(const torch::Tensor& batch_sum, std::int64_t rows);
  void apply_pending();
  torch::Tensor& centre() { return centre_; }
  // State for checkpoints: the centre, and the pending batch sum (undefined when none) with its row count.
  torch::Tensor pending_sum() const { return pending_sum_; }
  std::int64_t pending_rows() const { return pending_rows_; }
  void restore(torch::Tensor centre, torch::Tensor pending_sum, std::int64_t pending_rows);
  void to(torch::Device device);

 private:
  torch::Tensor centre_;
  double momentum_;
  torch::Tensor pending_sum_;
  std::int64_t pending_rows_ = 0;
};

// iBOT on the masked patches: rows [n_masked, K] of student logits and teacher targets, weighted per patch
// (1 / masked patches of its image), summed, divided by the number of images (global crops), negated.
torch::Tensor ibot_masked_loss(const torch::Tensor& student, const torch::Tensor& teacher, const torch::Tensor& patch_weights,
                               std::int64_t images, double student_temp);

// KoLeo on [B, D] features: L2-normalised (eps), nearest neighbour by the largest dot product (self excluded),
// -mean log(||x - x_nn + distance_eps|| + eps), as dinov2/loss/koleo_loss.py (always in fp32). Official: both
// 1e-8; the study's fork set the pairwise distance's epsilon (nn.PairwiseDistance(2, eps)) to 1e-4.
torch::Tensor koleo_loss(const torch::Tensor& features, double eps, double distance_eps);

}  // namespace histoflow::finetune
