// Patch-level benchmark figures: k-NN queries per second and peak memory at NCT-CRC-HE-100K -> CRC-VAL-HE-7K
// size (100,000 training rows, 7,000 queries, 1,536 dimensions), against the one matrix product the k-NN
// needs ([queries x dim] x [dim x train]); and the time to fit the linear probe. Figures are printed, never
// asserted.
//
//   build/bin/bench_knn [--train 100000] [--queries 7000] [--dim 1536] [--classes 9] [--k 20]
//                       [--threads 0] [--linear-rows 100000] [--linear-iterations 100] [--reference full|chunked]
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>

#include "histoflow/patch_eval/knn.hpp"
#include "histoflow/patch_eval/linear_probe.hpp"
#include "histoflow/threads.hpp"

using namespace histoflow::patch_eval;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The process's resident-set high-water mark (VmHWM), in MiB.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

// Filled in place: a temporary copy would raise the peak memory before the k-NN starts.
histoflow::features::FeatureMatrix random_matrix(std::int64_t rows, std::int64_t dim) {
  histoflow::features::FeatureMatrix m{rows, dim, std::vector<float>(static_cast<std::size_t>(rows * dim))};
  torch::from_blob(m.values.data(), {rows, dim}).normal_();
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t train_rows = 100000, queries = 7000, dim = 1536, classes = 9, k = 20, threads = 0;
  std::int64_t linear_rows = 100000, linear_iterations = 100;
  std::string reference = "full";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--train") train_rows = std::stoll(value);
    else if (flag == "--queries") queries = std::stoll(value);
    else if (flag == "--dim") dim = std::stoll(value);
    else if (flag == "--classes") classes = std::stoll(value);
    else if (flag == "--k") k = std::stoll(value);
    else if (flag == "--threads") threads = std::stoll(value);
    else if (flag == "--linear-rows") linear_rows = std::stoll(value);
    else if (flag == "--linear-iterations") linear_iterations = std::stoll(value);
    else if (flag == "--reference") reference = value;
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  const int thread_count = histoflow::resolve_thread_count(threads);
  at::set_num_threads(thread_count);
  torch::manual_seed(0);
  std::cout << "k-NN: " << train_rows << " training rows x " << queries << " queries x " << dim << " dimensions, k = " << k
            << ", " << thread_count << " threads, LibTorch " << TORCH_VERSION << "\n";

  const auto train = random_matrix(train_rows, dim);
  const auto test = random_matrix(queries, dim);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(train_rows));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i) % classes;
  const double data_mib = static_cast<double>((train.values.size() + test.values.size()) * sizeof(float)) / (1 << 20);
  const double rss_before = peak_rss_mib();

  KnnOptions options;
  options.ks = {k};
  knn_classify(train, labels, classes, random_matrix(std::min<std::int64_t>(queries, 256), dim), options);  // warm-up
  auto start = Clock::now();
  const auto predictions = knn_classify(train, labels, classes, test, options);
  const double knn_seconds = seconds_since(start);
  const double knn_peak = peak_rss_mib();

  // The one product the k-NN needs, as a single call (its [queries x train] result alone is
  // queries * train * 4 bytes); "chunked" times the same product in 1,024-row slices of the queries.
  const torch::Tensor a = torch::from_blob(const_cast<float*>(test.values.data()), {queries, dim});
  const torch::Tensor b = torch::from_blob(const_cast<float*>(train.values.data()), {train_rows, dim});
  double product_seconds = 0;
  {
    torch::InferenceMode guard;
    torch::mm(a.slice(0, 0, 256), b.t());  // warm-up
    start = Clock::now();
    if (reference == "full") {
      const torch::Tensor product = torch::mm(a, b.t());
      product_seconds = seconds_since(start);
    } else {
      for (std::int64_t q = 0; q < queries; q += 1024) torch::mm(a.slice(0, q, std::min(queries, q + 1024)), b.t());
      product_seconds = seconds_since(start);
    }
  }
  const double gflop = 2.0 * static_cast<double>(queries) * static_cast<double>(dim) * static_cast<double>(train_rows) / 1e9;

  std::cout << std::fixed << std::setprecision(2);
  std::cout << "  k-NN time:                 " << knn_seconds << " s (" << std::setprecision(0)
            << static_cast<double>(queries) / knn_seconds << " queries/s)\n"
            << std::setprecision(2);
  std::cout << "  matrix product (" << reference << "):     " << product_seconds << " s (" << std::setprecision(1)
            << gflop / product_seconds << " GFLOP/s)\n"
            << std::setprecision(2);
  std::cout << "  ratio k-NN / product:      " << knn_seconds / product_seconds << " (target <= 2)\n";
  std::cout << "  peak RSS during k-NN:      " << std::setprecision(0) << knn_peak << " MiB (features alone "
            << data_mib << " MiB; before k-NN " << rss_before << " MiB)\n";
  std::cout << "  first predictions:         " << predictions[0].majority[0] << ", " << predictions[0].majority[1] << "\n";

  // Linear probe: one fit (no sweep) of the first linear_rows training rows.
  histoflow::features::FeatureMatrix fit_rows{std::min(linear_rows, train_rows), dim, {}};
  fit_rows.values.assign(train.values.begin(), train.values.begin() + fit_rows.rows * dim);
  labels.resize(static_cast<std::size_t>(fit_rows.rows));
  LogisticFitOptions fit;
  fit.max_iterations = linear_iterations;
  start = Clock::now();
  const LogisticModel model = fit_logistic_regression(fit_rows, labels, classes, 1e-4, fit);
  const double fit_seconds = seconds_since(start);
  std::cout << std::setprecision(2) << "linear probe: one fit of " << fit_rows.rows << " x " << dim << ", " << classes
            << " classes, at most " << linear_iterations << " L-BFGS iterations: " << fit_seconds << " s ("
            << model.evaluations << " objective evaluations, " << fit_seconds / static_cast<double>(model.evaluations)
            << " s each); peak RSS " << std::setprecision(0) << peak_rss_mib() << " MiB\n";
  return 0;
}
