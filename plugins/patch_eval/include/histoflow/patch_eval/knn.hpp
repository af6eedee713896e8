#pragma once
// k-nearest-neighbour classification on frozen features: cosine similarity of L2-normalised rows, computed
// block by block with matrix products so that memory stays bounded (query_block x train_block similarities
// at a time, plus a running top-k per query), whatever the size of the training set.
//
// Voting, for each k: majority (as scikit-learn's KNeighborsClassifier with uniform weights; a tie between
// classes goes to the smallest class index) and temperature-weighted as in DINO (each neighbour adds
// exp(similarity / T) to its class). Rows of norm 0 have similarity 0 to everything (as sklearn's cosine).
// The header is free of LibTorch; the implementation uses it.
#include <cstdint>
#include <functional>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::patch_eval {

struct KnnOptions {
  std::vector<std::int64_t> ks{20};
  double temperature = 0.07;
  std::int64_t query_block = 1024;  // queries per block
  std::int64_t train_block = 16384; // training rows per block
  int threads = 0;                  // LibTorch intra-op threads; 0: leave the current setting
  std::function<void(std::int64_t done, std::int64_t total)> on_queries;  // query rows done, after each block
};

// The largest-k neighbours of every query, most similar first (ties: lower training row first).
struct Neighbours {
  std::int64_t queries = 0;
  std::int64_t k = 0;
  std::vector<std::int64_t> index;  // queries * k, training rows
  std::vector<float> similarity;    // queries * k, cosine similarity
};

Neighbours nearest_neighbours(const features::FeatureMatrix& train, const features::FeatureMatrix& queries,
                              std::int64_t k, const KnnOptions& options);

struct KnnPrediction {
  std::int64_t k = 0;
  std::vector<std::int64_t> majority;  // per query
  std::vector<std::int64_t> weighted;  // per query (DINO voting)
};

// One prediction per k of options.ks. Throws std::invalid_argument when a k is < 1 or larger than the
// training set, or the widths differ.
std::vector<KnnPrediction> knn_classify(const features::FeatureMatrix& train, const std::vector<std::int64_t>& train_labels,
                                        std::int64_t classes, const features::FeatureMatrix& queries,
                                        const KnnOptions& options);

}  // namespace histoflow::patch_eval
