#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/evaluation_common/confusion_matrix_image.hpp"
#include "histoflow/evaluation_common/svg_raster.hpp"

using namespace histoflow::evaluation_common;

TEST_CASE("classification metrics equal scikit-learn's, zero-division cases included") {
  const auto fixture = patch_eval_test::load_fixture("metrics.json");
  for (const auto& c : fixture["cases"]) {
    INFO("case: " << c["name"].get<std::string>());
    const auto y_true = c["y_true"].get<std::vector<std::int64_t>>();
    const auto y_pred = c["y_pred"].get<std::vector<std::int64_t>>();
    const auto classes = c["classes"].get<std::int64_t>();
    const ConfusionMatrix m = confusion_matrix(y_true, y_pred, classes);
    CHECK(m.counts == c["confusion"].get<std::vector<std::int64_t>>());
    const ClassificationMetrics r = classification_metrics(m);
    CHECK(r.accuracy == Approx(c["accuracy"].get<double>()).margin(1e-12));
    CHECK(r.balanced_accuracy == Approx(c["balanced_accuracy"].get<double>()).margin(1e-12));
    CHECK(r.macro_f1 == Approx(c["macro_f1"].get<double>()).margin(1e-12));
    CHECK(r.weighted_f1 == Approx(c["weighted_f1"].get<double>()).margin(1e-12));
    for (std::int64_t k = 0; k < classes; ++k) {
      INFO("class " << k);
      CHECK(r.precision[k] == Approx(c["precision"][k].get<double>()).margin(1e-12));
      CHECK(r.recall[k] == Approx(c["recall"][k].get<double>()).margin(1e-12));
      CHECK(r.f1[k] == Approx(c["f1"][k].get<double>()).margin(1e-12));
      CHECK(r.support[k] == c["support"][k].get<std::int64_t>());
    }
  }
}

TEST_CASE("confusion matrix rejects labels out of range and mismatched lengths") {
  CHECK_THROWS_WITH(confusion_matrix({0, 1}, {0}, 2), Catch::Contains("2 true labels but 1 predictions"));
  CHECK_THROWS_WITH(confusion_matrix({0, 3}, {0, 1}, 2), Catch::Contains("outside [0, 2)"));
}

TEST_CASE("confusion matrix CSV has class names on both axes") {
  const ConfusionMatrix m = confusion_matrix({0, 0, 1}, {0, 1, 1}, 2);
  CHECK(confusion_matrix_csv(m, {"ADI", "TUM,x"}) == "true\\predicted,ADI,\"TUM,x\"\nADI,1,1\n\"TUM,x\",0,1\n");
}

TEST_CASE("confusion matrix figure: class names on both axes, counts and fractions, shading by row fraction") {
  const ConfusionMatrix m = confusion_matrix({0, 0, 0, 0, 1, 1, 2}, {0, 0, 0, 0, 1, 0, 1}, 3);
  const std::string figure = confusion_matrix_svg(m, {"ADI", "TUM", "S<T"}, "Confusion: 20-NN on uni");
  CHECK_THAT(figure, Catch::Contains(">Confusion: 20-NN on uni</text>"));
  CHECK_THAT(figure, Catch::Contains(">predicted class</text>"));
  CHECK_THAT(figure, Catch::Contains(">S&lt;T</text>"));
  CHECK_THAT(figure, Catch::Contains("true ADI, predicted ADI: 4"));
  CHECK_THAT(figure, Catch::Contains("true TUM, predicted ADI: 1"));
  CHECK_THROWS_WITH(confusion_matrix_svg(m, {"ADI"}, "x"), Catch::Contains("1 class names for 3 classes"));
  // Rasterised: a full row (ADI) is dark blue, an empty cell white.
  const histoflow::RgbImage image = histoflow::evaluation_common::rasterise_svg(figure);
  std::size_t full = 0;
  for (std::size_t i = 0; i < image.pixels.size(); i += 3)
    full += image.pixels[i] == 8 && image.pixels[i + 1] == 48 && image.pixels[i + 2] == 107;
  CHECK(full > 40u * 40u);
}
