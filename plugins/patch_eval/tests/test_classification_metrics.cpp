#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/evaluation_common/confusion_matrix_image.hpp"

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

namespace {
std::uint32_t be32(const std::string& s, std::size_t at) {
  return (std::uint32_t(std::uint8_t(s[at])) << 24) | (std::uint32_t(std::uint8_t(s[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(s[at + 2])) << 8) | std::uint32_t(std::uint8_t(s[at + 3]));
}
}  // namespace

TEST_CASE("confusion matrix PNG: valid header, size from the class count, shading by row fraction") {
  const ConfusionMatrix m = confusion_matrix({0, 0, 0, 0, 1, 1, 2}, {0, 0, 0, 0, 1, 0, 1}, 3);
  const histoflow::RgbImage canvas = render_confusion_matrix(m, 20);
  CHECK(canvas.width == 3 * 20 + 4);
  // Cell (0, 0) is a full row (dark blue) at its corner; cell (0, 1) is empty (white).
  const auto pixel = [&](int x, int y) { return &canvas.pixels[(static_cast<std::size_t>(y) * canvas.width + x) * 3]; };
  CHECK(int(pixel(2, 2)[0]) == 8);
  CHECK(int(pixel(2, 2)[2]) == 107);
  CHECK(int(pixel(22 + 1, 2)[0]) == 255);
  const std::string png = encode_png(canvas);
  REQUIRE(png.size() > 33);
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n"));
  CHECK(png.substr(12, 4) == "IHDR");
  CHECK(be32(png, 16) == 64);
  CHECK(be32(png, 20) == 64);
  CHECK(png.substr(png.size() - 8, 4) == "IEND");
  // The raw scanlines are stored uncompressed: the image data holds height * (1 + 3 * width) bytes plus framing.
  CHECK(be32(png, 33) > 64u * (1 + 3 * 64));
}
