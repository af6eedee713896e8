#pragma once
// Student and teacher of DINOv2's self-supervised step (dinov2/train/ssl_meta_arch.py): the same backbone
// twice, a DINO head each (and an iBOT head each when separate), the loss of one batch and the teacher's EMA.
// The teacher sees the two global crops only, crossed; it is never trained and always in eval mode.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "block_masking.hpp"
#include "dino_head.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "ssl_config.hpp"
#include "collectives.hpp"
#include "ssl_losses.hpp"

namespace histoflow::finetune {

struct SslBatch {
  torch::Tensor global_crops;  // [2B, 3, G, G], crop-major: row = crop * B + image
  torch::Tensor local_crops;   // [local_number * B, 3, L, L], crop-major
  CropMasks masks;             // over the global crops
};

// The terms as they enter the total (weights included), and what the parity tests look at.
struct LossTerms {
  torch::Tensor dino_local, dino_global, koleo, ibot, total;  // scalars (total keeps the graph for backward)
  torch::Tensor student_global_cls_head;                      // [2B, K]
  torch::Tensor teacher_global_cls_head;                      // [2B, K], swapped crop order
  torch::Tensor dino_targets;                                 // [2, B, K]
  torch::Tensor ibot_targets;                                 // [n_masked, K_ibot]
};

// One network of the pair: backbone and heads (the ibot head only when separate).
struct SslNetwork {
  std::unique_ptr<torch_encoders::Backbone> backbone;
  torch_encoders::TrainableVit* vit = nullptr;
  DinoHead dino_head{nullptr};
  DinoHead ibot_head{nullptr};
  // (module name, module) in the official order: backbone, dino_head, ibot_head.
  std::vector<std::pair<std::string, torch::nn::Module*>> modules();
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters();  // prefixed by module name
};

class SslModel {
 public:
  // The backbone comes from the registry; weights (or synthetic ones) are loaded into the student, the position
  // embedding is resized to the global crops' grid, and the teacher starts as a copy of the student.
  explicit SslModel(const SslConfig& config);
  // For tests: a backbone built by the caller (already initialised), with the same steps.
  SslModel(const SslConfig& config, std::unique_ptr<torch_encoders::Backbone> student, std::unique_ptr<torch_encoders::Backbone> teacher);

  // Forward of both networks and the total loss; calls backward on the total (scaled by loss_scale).
  LossTerms forward_backward(const SslBatch& batch, double teacher_temp, double loss_scale = 1.0);
  // Data-parallel: the Sinkhorn-Knopp sums, the centres' batch sums and the masked-patch count are summed over the
  // processes (as the official all-reduces). Null or one process: this process's batch alone. Not owned.
  void set_collectives(Collectives* collectives) { collectives_ = collectives; }
  void update_teacher(double momentum);  // teacher = m teacher + (1 - m) student, every module
  void copy_student_to_teacher();

  SslNetwork& student() { return student_; }
  SslNetwork& teacher() { return teacher_; }
  SoftmaxCentre& dino_centre() { return dino_centre_; }
  SoftmaxCentre& ibot_centre() { return ibot_centre_; }
  std::vector<double> drop_path_rates() const;
  torch::Generator& drop_path_generator() { return generator_; }
  void to(torch::Device device);
  int grid() const { return grid_; }
  std::string source_sha256() const { return source_sha256_; }

 private:
  void build(std::unique_ptr<torch_encoders::Backbone> student, std::unique_ptr<torch_encoders::Backbone> teacher);

  SslConfig config_;
  SslNetwork student_, teacher_;
  SoftmaxCentre dino_centre_, ibot_centre_;
  torch::Generator generator_;
  torch::Dtype compute_ = torch::kFloat;
  int grid_ = 0;
  std::string source_sha256_;
  Collectives* collectives_ = nullptr;
};

}  // namespace histoflow::finetune
