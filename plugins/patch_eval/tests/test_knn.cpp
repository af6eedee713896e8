#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "histoflow/patch_eval/knn.hpp"

using namespace histoflow::patch_eval;

TEST_CASE("k-NN agrees with scikit-learn's KNeighborsClassifier (cosine, brute) and DINO voting") {
  const auto f = patch_eval_test::load_fixture("knn.json");
  const auto dim = f["dim"].get<std::int64_t>();
  const auto train = patch_eval_test::matrix(f["train_x"], f["train_rows"].get<std::int64_t>(), dim);
  const auto test = patch_eval_test::matrix(f["test_x"], f["test_rows"].get<std::int64_t>(), dim);
  const auto train_y = f["train_y"].get<std::vector<std::int64_t>>();
  KnnOptions options;
  options.ks = f["ks"].get<std::vector<std::int64_t>>();
  options.temperature = f["temperature"].get<double>();
  options.train_block = 64;  // several blocks and a partial last one: the merge of running top-k is exercised
  options.query_block = 16;
  const auto predictions = knn_classify(train, train_y, f["classes"].get<std::int64_t>(), test, options);
  REQUIRE(predictions.size() == options.ks.size());
  for (const auto& p : predictions) {
    const std::string k = std::to_string(p.k);
    const auto sklearn = f["majority"][k].get<std::vector<std::int64_t>>();
    const auto dino = f["weighted"][k].get<std::vector<std::int64_t>>();
    const auto near_tie = f["near_tie"][k].get<std::vector<bool>>();
    int compared = 0, majority_same = 0, weighted_same = 0;
    for (std::size_t q = 0; q < sklearn.size(); ++q) {
      if (near_tie[q]) continue;  // k-th and (k+1)-th neighbour equally far: either order is right
      ++compared;
      majority_same += p.majority[q] == sklearn[q];
      weighted_same += p.weighted[q] == dino[q];
    }
    INFO("k = " << k << ": " << majority_same << "/" << compared << " majority, " << weighted_same << " weighted");
    CHECK(compared >= static_cast<int>(sklearn.size()) - 2);
    CHECK(majority_same == compared);
    CHECK(weighted_same == compared);
  }
}

TEST_CASE("k-NN blocks do not change the neighbours") {
  const auto f = patch_eval_test::load_fixture("knn.json");
  const auto dim = f["dim"].get<std::int64_t>();
  const auto train = patch_eval_test::matrix(f["train_x"], f["train_rows"].get<std::int64_t>(), dim);
  const auto test = patch_eval_test::matrix(f["test_x"], f["test_rows"].get<std::int64_t>(), dim);
  KnnOptions whole, tiny;
  tiny.query_block = 7;
  tiny.train_block = 5;  // smaller than k: each block contributes all its rows
  const Neighbours a = nearest_neighbours(train, test, 20, whole);
  const Neighbours b = nearest_neighbours(train, test, 20, tiny);
  CHECK(a.index == b.index);
  for (std::size_t i = 0; i < a.similarity.size(); ++i) REQUIRE(a.similarity[i] == Approx(b.similarity[i]).margin(1e-6));
  // Most similar first.
  for (std::int64_t q = 0; q < a.queries; ++q)
    for (std::int64_t j = 1; j < a.k; ++j) REQUIRE(a.similarity[q * a.k + j - 1] >= a.similarity[q * a.k + j]);
}

TEST_CASE("k-NN on a tiny example: cosine ignores scale, a zero row scores 0, vote ties go to the lower class") {
  histoflow::features::FeatureMatrix train{4, 2, {1, 0, 10, -0.5f, 0, 1, 0, 0}};
  const std::vector<std::int64_t> labels{1, 1, 0, 2};
  histoflow::features::FeatureMatrix query{1, 2, {3, 0.1f}};
  KnnOptions options;
  options.ks = {1, 2, 3};
  const auto p = knn_classify(train, labels, 3, query, options);
  CHECK(p[0].majority[0] == 1);  // nearest: (1, 0), although (10, -0.5) is longer
  CHECK(p[1].majority[0] == 1);
  // k = 3: (0, 1) (similarity 0.033) beats the zero row (similarity 0), so class 0 gets the third vote; class 1 wins 2 to 1.
  CHECK(p[2].majority[0] == 1);
  const Neighbours n = nearest_neighbours(train, query, 4, options);
  CHECK(n.index == std::vector<std::int64_t>{0, 1, 2, 3});
  CHECK(n.similarity[3] == 0.0f);

  histoflow::features::FeatureMatrix two{2, 2, {1, 0, 0, 1}};
  histoflow::features::FeatureMatrix diagonal{1, 2, {1, 1}};
  options.ks = {2};
  const auto tie = knn_classify(two, {2, 0}, 3, diagonal, options);
  CHECK(tie[0].majority[0] == 0);  // one vote each: the lower class index, as scipy's mode
}

TEST_CASE("k-NN errors: k larger than the training set, different widths") {
  histoflow::features::FeatureMatrix train{3, 2, {1, 0, 0, 1, 1, 1}};
  histoflow::features::FeatureMatrix query{1, 2, {1, 0}};
  KnnOptions options;
  options.ks = {5};
  CHECK_THROWS_WITH(knn_classify(train, {0, 1, 0}, 2, query, options), Catch::Contains("k = 5 is larger than the training set (3 rows)"));
  histoflow::features::FeatureMatrix wide{1, 3, {1, 0, 0}};
  options.ks = {1};
  CHECK_THROWS_WITH(knn_classify(train, {0, 1, 0}, 2, wide, options), Catch::Contains("width 2, queries 3"));
}
