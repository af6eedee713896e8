#pragma once
// Evaluation during finetuning, with the patch benchmark's own protocols: the teacher's CLS features of a
// labelled patch set (the k-NN memory bank and linear-probe training set) and of a second one (the queries),
// then weighted k-NN (20-NN, T = 0.07, as DINO) and the linear probe (lambda swept on a stratified split of the
// first set), scored by balanced accuracy. The images are decoded and resized once; each evaluation runs the
// network over them again.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::torch_encoders {
class Backbone;
}

namespace histoflow::finetune {

struct EvaluationSettings {
  std::filesystem::path train;        // class folders (or a CSV of path,label): the memory bank
  std::filesystem::path test;         // the queries
  int image_size = 224;               // images are resized to image_size x image_size
  std::int64_t max_per_class = 0;     // > 0: a seeded sample of at most this many images per class and set
  std::int64_t k = 20;
  double temperature = 0.07;
  bool linear_probe = true;
  std::int64_t batch = 64;            // images per forward pass
  std::uint64_t seed = 0;             // the per-class sample and the linear probe's split

  // The settings as text: an evaluation point is comparable only with points of the same settings.
  std::string describe() const;
};

struct EvaluationScore {
  double knn_balanced_accuracy = 0;
  double linear_balanced_accuracy = -1;  // -1 without the linear probe
  double seconds = 0;
};

class TrainingEvaluation {
 public:
  // Lists and decodes both sets. Throws std::invalid_argument, naming the sets, when one is empty, their
  // classes differ, the memory bank is smaller than k, or (with the linear probe) a class has fewer than 2
  // images in it.
  explicit TrainingEvaluation(const EvaluationSettings& settings);
  // `before_batch`, when given, is called before each batch of images is encoded, each block of k-NN queries and each
  // linear-probe fit: it may throw to stop (a cancelled run).
  EvaluationScore evaluate(torch_encoders::Backbone& backbone, torch::Device device,
                           const std::function<void()>& before_batch = {}) const;
  std::int64_t train_images() const { return train_.images.size(0); }
  std::int64_t test_images() const { return test_.images.size(0); }

 private:
  struct ImageSet {
    torch::Tensor images;           // uint8 [N, S, S, 3]
    features::PatchFeatures rows;  // labels, paths and class names; the features are computed per evaluation
  };

  ImageSet load(const std::filesystem::path& source) const;
  // The set's rows with the network's CLS features.
  features::PatchFeatures features_of(torch_encoders::Backbone& backbone, const ImageSet& set, torch::Device device,
                                      const std::function<void()>& before_batch) const;

  EvaluationSettings settings_;
  ImageSet train_, test_;
};

}  // namespace histoflow::finetune
