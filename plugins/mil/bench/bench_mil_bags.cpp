// MIL aggregators on real-size bags: one training epoch over bags read from HDF5 feature files (CLAM layout,
// read as mil_cv reads them) in the timed part, each step the trainer's own (train_on_bag: tiles drawn,
// z-scored, forward, loss, backward, AdamW), then with --score every bag scored whole (predict_bag). Prints one
// JSON line: epoch and scoring seconds, seconds spent reading, and the process's peak resident memory
// (ru_maxrss). One aggregator per process, so that the peak is that aggregator's. tools/bench/bench-mil-bags
// runs it against the same models in Python torch.
//   build/bin/bench_mil_bags --data DIR --aggregator transformer [--bags N] [--max-tiles 512] [--score]
//                            [--threads 2] [--hidden-dim 512] [--dropout 0.25] [--seed 1]
#include <ATen/CPUGeneratorImpl.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "histoflow/cpu_kernels.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/mil/aggregator.hpp"
#include "trainer.hpp"

using namespace histoflow::mil;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::filesystem::path bag_file(const std::filesystem::path& data, int b) {
  char name[32];
  std::snprintf(name, sizeof name, "bag_%04d.h5", b);
  return data / name;
}

// As mil_cv builds a bag from a slide's feature file (read_slide_input, then build_bags).
Bag read_bag(const std::filesystem::path& data, int b) {
  auto file = histoflow::features::read_slide_features(histoflow::features::FeatureFileRef{bag_file(data, b), "h5", {}});
  Bag bag;
  bag.id = bag.patient = "bag" + std::to_string(b);
  bag.slides = {bag.id};
  bag.label = b % 2;
  bag.features = adopt_as_tensor(std::move(file.features.values), file.features.rows, file.features.dim);
  bag.coords = std::move(file.coords);
  bag.tile_slide.assign(static_cast<std::size_t>(file.features.rows), 0);
  return bag;
}

}  // namespace

int main(int argc, char** argv) try {
  histoflow::use_widest_cpu_kernels();  // the kernels flowrun runs on
  std::filesystem::path data;
  TrainingOptions options;
  int bags = 200, threads = 2;
  bool score = false;
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--score") {
      score = true;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + key);
    const std::string value = argv[++i];
    if (key == "--data") data = value;
    else if (key == "--aggregator") options.aggregator = value;
    else if (key == "--bags") bags = std::stoi(value);
    else if (key == "--max-tiles") options.max_tiles = std::stoll(value);
    else if (key == "--threads") threads = std::stoi(value);
    else if (key == "--hidden-dim") options.model.hidden_dim = std::stoll(value);
    else if (key == "--dropout") options.model.dropout = std::stod(value);
    else if (key == "--seed") seed = std::stoull(value);
    else throw std::invalid_argument("unknown option " + key);
  }
  if (data.empty() || bags < 1) throw std::invalid_argument("usage: bench_mil_bags --data DIR --aggregator NAME [--bags N] ...");
  at::set_num_threads(threads);

  // Outside the timed part: the model, its initialisation, the optimizer.
  const auto dim = histoflow::features::read_feature_shape(histoflow::features::FeatureFileRef{bag_file(data, 0), "h5", {}}).dim;
  options.model.input_dim = dim;
  options.model.classes = 2;
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  TrainedModel trained;
  trained.model = find_aggregator(options.aggregator).create(options.model);
  initialise_parameters(*trained.model, generator);
  trained.input_mean = torch::zeros({dim});  // the generating distribution's; z-scoring is still done
  trained.input_std = torch::ones({dim});
  torch::optim::AdamW optimizer(trained.model->parameters(),
                                torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  const std::vector<double> class_weights{1.0, 1.0};  // alternating labels: balanced
  std::int64_t parameters = 0;
  for (const auto& p : trained.model->parameters()) parameters += p.numel();

  trained.model->train();
  double loss_sum = 0, read_seconds = 0;
  const auto epoch_start = Clock::now();
  for (int b = 0; b < bags; ++b) {
    const auto read_start = Clock::now();
    const Bag bag = read_bag(data, b);
    read_seconds += seconds_since(read_start);
    loss_sum += train_on_bag(trained, optimizer, bag, class_weights, options, generator);
  }
  const double epoch_seconds = seconds_since(epoch_start);

  nlohmann::json score_seconds = nullptr;
  if (score) {
    trained.model->eval();
    const auto score_start = Clock::now();
    for (int b = 0; b < bags; ++b) {
      const Bag bag = read_bag(data, b);
      const auto prediction = predict_bag(trained, bag, torch::kCPU);
      if (!prediction.attention.empty() && prediction.attention.size() != static_cast<std::size_t>(bag.features.size(0)))
        throw std::runtime_error("attention of " + std::to_string(prediction.attention.size()) + " tiles for a bag of " +
                                 std::to_string(bag.features.size(0)));
    }
    score_seconds = seconds_since(score_start);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::cout << nlohmann::json{{"side", "histoflow"},
                              {"aggregator", options.aggregator},
                              {"bags", bags},
                              {"max_tiles", options.max_tiles},
                              {"parameters", parameters},
                              {"epoch_seconds", epoch_seconds},
                              {"read_seconds", read_seconds},
                              {"score_seconds", score_seconds},
                              {"mean_loss", loss_sum / bags},
                              {"peak_rss_mib", static_cast<double>(usage.ru_maxrss) / 1024.0},
                              {"threads", threads}}
                   .dump()
            << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_mil_bags: " << e.what() << "\n";
  return 1;
}
