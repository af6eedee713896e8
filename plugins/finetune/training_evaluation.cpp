#include "training_evaluation.hpp"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/patch_eval/knn.hpp"
#include "histoflow/patch_eval/linear_probe_sweep.hpp"
#include "histoflow/slides/image_decode.hpp"
#include "histoflow/slides/patch_dataset.hpp"
#include "histoflow/slides/resample.hpp"
#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::finetune {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> missing_from(const std::vector<std::string>& names, const std::vector<std::string>& other) {
  std::vector<std::string> out;
  for (const auto& n : names)
    if (std::find(other.begin(), other.end(), n) == other.end()) out.push_back(n);
  return out;
}

features::FeatureMatrix matrix_of(const torch::Tensor& rows) {
  const torch::Tensor t = rows.to(torch::kCPU, torch::kFloat).contiguous();
  features::FeatureMatrix m;
  m.rows = t.size(0);
  m.dim = t.size(1);
  m.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  return m;
}

}  // namespace

std::string EvaluationSettings::describe() const {
  std::ostringstream out;
  out << "train=" << train.string() << " test=" << test.string() << " size=" << image_size << " max_per_class=" << max_per_class
      << " k=" << k << " T=" << temperature << " linear_probe=" << (linear_probe ? "yes" : "no") << " seed=" << seed;
  return out.str();
}

TrainingEvaluation::TrainingEvaluation(const EvaluationSettings& settings) : settings_(settings) {
  train_ = load(settings.train);
  test_ = load(settings.test);
  const auto& classes = train_.rows.class_names;
  if (test_.rows.class_names != classes) {
    const auto only_train = missing_from(classes, test_.rows.class_names), only_test = missing_from(test_.rows.class_names, classes);
    throw std::invalid_argument("the evaluation sets have different classes: only in eval_train (" + settings.train.string() +
                                "): " + joined(only_train) + "; only in eval_test (" + settings.test.string() + "): " + joined(only_test));
  }
  if (train_images() < settings.k)
    throw std::invalid_argument("eval_train (" + settings.train.string() + ") has " + std::to_string(train_images()) +
                                " images, fewer than the k-NN's k = " + std::to_string(settings.k));
  if (settings.linear_probe) {
    std::vector<std::int64_t> count(classes.size(), 0);
    for (const auto label : train_.rows.labels) ++count[static_cast<std::size_t>(label)];
    for (std::size_t c = 0; c < count.size(); ++c)
      if (count[c] < 2)
        throw std::invalid_argument("class '" + classes[c] + "' of eval_train (" + settings.train.string() + ") has " +
                                    std::to_string(count[c]) + " image: the linear probe's validation split needs 2");
  }
}

TrainingEvaluation::ImageSet TrainingEvaluation::load(const std::filesystem::path& source) const {
  slides::PatchDatasetSource spec;
  (std::filesystem::is_directory(source) ? spec.root : spec.csv) = source;
  const slides::PatchDataset dataset = slides::list_patch_dataset(spec);

  // A seeded sample of at most max_per_class images per class, in the listing's order.
  std::vector<std::size_t> chosen;
  if (settings_.max_per_class > 0) {
    std::map<std::int64_t, std::vector<std::size_t>> by_class;
    for (std::size_t i = 0; i < dataset.files.size(); ++i) by_class[dataset.labels[i]].push_back(i);
    std::mt19937_64 rng(settings_.seed);
    for (auto& [label, rows] : by_class) {
      std::shuffle(rows.begin(), rows.end(), rng);
      rows.resize(std::min<std::size_t>(rows.size(), static_cast<std::size_t>(settings_.max_per_class)));
      chosen.insert(chosen.end(), rows.begin(), rows.end());
    }
    std::sort(chosen.begin(), chosen.end());
  } else {
    chosen.resize(dataset.files.size());
    for (std::size_t i = 0; i < chosen.size(); ++i) chosen[i] = i;
  }

  const int size = settings_.image_size;
  ImageSet set;
  set.images = torch::empty({static_cast<std::int64_t>(chosen.size()), size, size, 3}, torch::kUInt8);
  set.rows.class_names = dataset.classes;
  for (const auto i : chosen) {
    set.rows.labels.push_back(dataset.labels[i]);
    set.rows.paths.push_back(dataset.files[i].string());
  }
  slides::ensure_vips();
  std::uint8_t* pixels = set.images.data_ptr<std::uint8_t>();
  const std::size_t image_bytes = static_cast<std::size_t>(size) * size * 3;
  tbb::parallel_for(std::size_t{0}, chosen.size(), [&](std::size_t row) {
    const slides::RgbImage image = slides::decode_rgb(dataset.files[chosen[row]]);  // throws naming the file
    slides::resize_rgb(image.pixels.data(), image.width, image.height, pixels + row * image_bytes, size, size);
  });
  return set;
}

features::PatchFeatures TrainingEvaluation::features_of(torch_encoders::Backbone& backbone, const ImageSet& set,
                                                        torch::Device device, const std::function<void()>& before_batch) const {
  torch::NoGradGuard no_grad;
  const std::int64_t n = set.images.size(0), size = settings_.image_size;
  std::vector<torch::Tensor> blocks;
  for (std::int64_t start = 0; start < n; start += settings_.batch) {
    if (before_batch) before_batch();
    const std::int64_t count = std::min(settings_.batch, n - start);
    torch::Tensor batch = torch::empty({count, 3, size, size});
    for (std::int64_t i = 0; i < count; ++i)
      augment::normalise_crop(set.images[start + i].data_ptr<std::uint8_t>(), size, batch[i].data_ptr<float>());
    blocks.push_back(backbone.forward(batch.to(device)).cls.to(torch::kCPU, torch::kFloat));
  }
  features::PatchFeatures out = set.rows;
  out.features = matrix_of(torch::cat(blocks));
  return out;
}

EvaluationScore TrainingEvaluation::evaluate(torch_encoders::Backbone& backbone, torch::Device device,
                                             const std::function<void()>& before_batch) const {
  const auto start = std::chrono::steady_clock::now();
  const auto classes = static_cast<std::int64_t>(train_.rows.class_names.size());
  const features::PatchFeatures train = features_of(backbone, train_, device, before_batch),
                                test = features_of(backbone, test_, device, before_batch);

  EvaluationScore score;
  patch_eval::KnnOptions knn;
  knn.ks = {settings_.k};
  knn.temperature = settings_.temperature;
  if (before_batch) knn.on_queries = [&](std::int64_t, std::int64_t) { before_batch(); };
  const auto predicted = patch_eval::knn_classify(train.features, train.labels, classes, test.features, knn);
  score.knn_balanced_accuracy =
      evaluation_common::classification_metrics(test.labels, predicted.front().weighted, classes).balanced_accuracy;
  if (settings_.linear_probe) {
    patch_eval::SweepOptions sweep;
    sweep.seed = settings_.seed;
    if (before_batch) sweep.on_fit = [&](std::size_t, std::size_t, double) { before_batch(); };
    const auto probe = patch_eval::run_linear_probe(train, test, sweep);
    score.linear_balanced_accuracy = evaluation_common::classification_metrics(test.labels, probe.test_predictions, classes).balanced_accuracy;
  }
  score.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return score;
}

}  // namespace histoflow::finetune
