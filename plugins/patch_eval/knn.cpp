#include "histoflow/patch_eval/knn.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace histoflow::patch_eval {
namespace {

// A float32 view of the caller's matrix (read only, no copy).
torch::Tensor view_of(const features::FeatureMatrix& m) {
  return torch::from_blob(const_cast<float*>(m.values.data()), {m.rows, m.dim}, torch::kFloat32);
}

// 1 / max(||row||, eps): zero rows then score 0 against everything, as sklearn's normalize() leaves them 0.
torch::Tensor inverse_norms(const torch::Tensor& rows) { return rows.norm(2, 1).clamp_min(1e-12).reciprocal(); }

}  // namespace

Neighbours nearest_neighbours(const features::FeatureMatrix& train, const features::FeatureMatrix& queries,
                              std::int64_t k, const KnnOptions& options) {
  if (train.dim != queries.dim)
    throw std::invalid_argument("k-NN: training features have width " + std::to_string(train.dim) + ", queries " +
                                std::to_string(queries.dim));
  if (k < 1 || k > train.rows)
    throw std::invalid_argument("k-NN: k = " + std::to_string(k) + " but the training set has " +
                                std::to_string(train.rows) + " rows (k must be in [1, " + std::to_string(train.rows) + "])");
  if (options.query_block < 1 || options.train_block < 1) throw std::invalid_argument("k-NN: block sizes must be positive");
  if (options.threads > 0) at::set_num_threads(options.threads);
  torch::InferenceMode guard;
  const torch::Tensor train_rows = view_of(train), query_rows = view_of(queries);
  const torch::Tensor train_inv_norm = inverse_norms(train_rows);

  Neighbours result{queries.rows, k, std::vector<std::int64_t>(static_cast<std::size_t>(queries.rows * k)),
                    std::vector<float>(static_cast<std::size_t>(queries.rows * k))};
  for (std::int64_t q0 = 0; q0 < queries.rows; q0 += options.query_block) {
    if (options.on_queries) options.on_queries(q0, queries.rows);
    const std::int64_t q1 = std::min(queries.rows, q0 + options.query_block);
    const torch::Tensor block = query_rows.slice(0, q0, q1);
    const torch::Tensor normalised = block * inverse_norms(block).unsqueeze(1);
    torch::Tensor best_sim, best_index;  // [queries in block, <= k], running top-k
    for (std::int64_t t0 = 0; t0 < train.rows; t0 += options.train_block) {
      const std::int64_t t1 = std::min(train.rows, t0 + options.train_block);
      // One matrix product per block; the training rows are scaled after it (a [Q, T] pass, not [T, D]).
      torch::Tensor sim = torch::mm(normalised, train_rows.slice(0, t0, t1).t());
      sim.mul_(train_inv_norm.slice(0, t0, t1).unsqueeze(0));
      auto [top_sim, top_index] = sim.topk(std::min(k, t1 - t0), 1, /*largest=*/true, /*sorted=*/false);
      top_index.add_(t0);
      if (best_sim.defined()) {
        top_sim = torch::cat({best_sim, top_sim}, 1);
        top_index = torch::cat({best_index, top_index}, 1);
      }
      if (top_sim.size(1) > k) {
        auto [merged_sim, position] = top_sim.topk(k, 1, true, false);
        top_index = top_index.gather(1, position);
        top_sim = merged_sim;
      }
      best_sim = top_sim;
      best_index = top_index;
    }
    // Most similar first; equal similarities: lower training row first (deterministic, like a stable sort).
    const auto sims = best_sim.contiguous();
    const auto indices = best_index.contiguous();
    const float* s = sims.data_ptr<float>();
    const std::int64_t* ix = indices.data_ptr<std::int64_t>();
    std::vector<std::int64_t> order(static_cast<std::size_t>(k));
    for (std::int64_t r = 0; r < q1 - q0; ++r) {
      for (std::int64_t j = 0; j < k; ++j) order[static_cast<std::size_t>(j)] = j;
      const float* rs = s + r * k;
      const std::int64_t* ri = ix + r * k;
      std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return rs[a] != rs[b] ? rs[a] > rs[b] : ri[a] < ri[b];
      });
      const std::size_t out = static_cast<std::size_t>((q0 + r) * k);
      for (std::int64_t j = 0; j < k; ++j) {
        result.index[out + static_cast<std::size_t>(j)] = ri[order[static_cast<std::size_t>(j)]];
        result.similarity[out + static_cast<std::size_t>(j)] = rs[order[static_cast<std::size_t>(j)]];
      }
    }
  }
  return result;
}

std::vector<KnnPrediction> knn_classify(const features::FeatureMatrix& train, const std::vector<std::int64_t>& train_labels,
                                        std::int64_t classes, const features::FeatureMatrix& queries,
                                        const KnnOptions& options) {
  if (options.ks.empty()) throw std::invalid_argument("k-NN: no k given");
  if (!(options.temperature > 0)) throw std::invalid_argument("k-NN: temperature must be positive");
  if (static_cast<std::int64_t>(train_labels.size()) != train.rows)
    throw std::invalid_argument("k-NN: " + std::to_string(train.rows) + " training rows but " +
                                std::to_string(train_labels.size()) + " labels");
  for (std::int64_t k : options.ks)
    if (k < 1 || k > train.rows)
      throw std::invalid_argument("k-NN: k = " + std::to_string(k) + " is larger than the training set (" +
                                  std::to_string(train.rows) + " rows)");
  const std::int64_t k_max = *std::max_element(options.ks.begin(), options.ks.end());
  const Neighbours nn = nearest_neighbours(train, queries, k_max, options);

  std::vector<KnnPrediction> predictions;
  std::vector<double> votes(static_cast<std::size_t>(classes));
  const auto argmax = [&] {  // first maximum: ties go to the smallest class index
    return static_cast<std::int64_t>(std::max_element(votes.begin(), votes.end()) - votes.begin());
  };
  for (std::int64_t k : options.ks) {
    KnnPrediction p{k, std::vector<std::int64_t>(static_cast<std::size_t>(queries.rows)),
                    std::vector<std::int64_t>(static_cast<std::size_t>(queries.rows))};
    for (std::int64_t q = 0; q < queries.rows; ++q) {
      const std::size_t base = static_cast<std::size_t>(q * k_max);
      std::fill(votes.begin(), votes.end(), 0.0);
      for (std::int64_t j = 0; j < k; ++j) votes[static_cast<std::size_t>(train_labels[static_cast<std::size_t>(nn.index[base + j])])] += 1.0;
      p.majority[static_cast<std::size_t>(q)] = argmax();
      std::fill(votes.begin(), votes.end(), 0.0);
      for (std::int64_t j = 0; j < k; ++j)
        votes[static_cast<std::size_t>(train_labels[static_cast<std::size_t>(nn.index[base + j])])] +=
            std::exp(static_cast<double>(nn.similarity[base + j]) / options.temperature);
      p.weighted[static_cast<std::size_t>(q)] = argmax();
    }
    predictions.push_back(std::move(p));
  }
  return predictions;
}

}  // namespace histoflow::patch_eval
