// Parity of every augmentation operation with torchvision on PIL images (fixtures written by
// tools/parity/make_augment_fixtures.py from torchvision 0.14 / Pillow 9.4): byte-identical outputs, except the
// Gaussian blur, which torchvision computes as one 2-D float32 convolution and this code as two 1-D passes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "color_ops.hpp"
#include "gaussian_blur.hpp"
#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/augment/pil_resample.hpp"
#include "histoflow/augment/random_resized_crop.hpp"

using namespace histoflow;
using namespace histoflow::augment;
using nlohmann::json;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests/fixtures/augment";

struct Fixtures {
  json meta;
  std::string data;
  Fixtures() {
    std::ifstream meta_file(kFixtures / "cases.json");
    meta_file >> meta;
    std::ifstream data_file(kFixtures / "data.bin", std::ios::binary);
    std::stringstream buffer;
    buffer << data_file.rdbuf();
    data = buffer.str();
  }
  RgbImage input(int index) const {
    const json& record = meta["inputs"][index];
    RgbImage image;
    image.height = record["height"];
    image.width = record["width"];
    const std::size_t offset = record["offset"];
    image.pixels.assign(data.begin() + static_cast<std::ptrdiff_t>(offset),
                        data.begin() + static_cast<std::ptrdiff_t>(offset + static_cast<std::size_t>(image.width) * image.height * 3));
    return image;
  }
  const json& find(const std::string& name) const {
    for (const auto& c : meta["cases"])
      if (c["name"] == name) return c;
    throw std::runtime_error("no fixture case " + name);
  }
  std::vector<std::uint8_t> expected_bytes(const json& c) const {
    std::size_t n = 1;
    for (const auto& d : c["output"]["shape"]) n *= d.get<std::size_t>();
    const std::size_t offset = c["output"]["offset"];
    return {data.begin() + static_cast<std::ptrdiff_t>(offset), data.begin() + static_cast<std::ptrdiff_t>(offset + n)};
  }
};

const Fixtures& fixtures() {
  static const Fixtures f;
  return f;
}

// Cases of one operation, by name.
std::vector<std::string> cases_of(const std::string& operation) {
  std::vector<std::string> names;
  for (const auto& c : fixtures().meta["cases"])
    if (c["operation"] == operation) names.push_back(c["name"]);
  REQUIRE(!names.empty());
  return names;
}

void require_identical(const RgbImage& got, const json& c) {
  INFO("case " << c["name"].get<std::string>());
  const auto& shape = c["output"]["shape"];
  REQUIRE(got.height == shape[0].get<int>());
  REQUIRE(got.width == shape[1].get<int>());
  const auto expected = fixtures().expected_bytes(c);
  std::size_t different = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) different += got.pixels[i] != expected[i];
  CHECK(different == 0);
}

}  // namespace

TEST_CASE("resized crops are Pillow's bicubic resize byte for byte", "[augment][parity]") {
  for (const auto& name : cases_of("resized_crop")) {
    const json& c = fixtures().find(name);
    const json& p = c["params"];
    const RgbImage out = resized_crop(fixtures().input(c["input"]), {p["top"], p["left"], p["height"], p["width"]}, p["size"]);
    require_identical(out, c);
  }
  RgbImage flipped = fixtures().input(0);
  flip_horizontal(flipped);
  require_identical(flipped, fixtures().find("hflip"));
  flipped = fixtures().input(0);
  flip_vertical(flipped);
  require_identical(flipped, fixtures().find("vflip"));
}

TEST_CASE("colour operations are torchvision's on PIL images byte for byte", "[augment][parity]") {
  const std::pair<const char*, int> operations[] = {{"brightness", 0}, {"contrast", 1}, {"saturation", 2}, {"hue", 3}};
  for (const auto& [operation, index] : operations)
    for (const auto& name : cases_of(operation)) {
      const json& c = fixtures().find(name);
      RgbImage image = fixtures().input(c["input"]);
      adjust_color(image, index, c["params"]["factor"].get<double>());
      require_identical(image, c);
    }
  RgbImage grey = fixtures().input(1);
  to_grayscale(grey);
  require_identical(grey, fixtures().find("grayscale"));
  RgbImage solar = fixtures().input(1);
  solarize(solar, 128);
  require_identical(solar, fixtures().find("solarize"));
  for (const auto& name : cases_of("color_jitter")) {
    const json& c = fixtures().find(name);
    RgbImage image = fixtures().input(c["input"]);
    for (const int op : c["params"]["order"]) adjust_color(image, op, c["params"]["factors"][op].get<double>());
    require_identical(image, c);
  }
}

TEST_CASE("Gaussian blur matches torchvision's within one level on at most 0.1% of values", "[augment][parity]") {
  for (const auto& name : cases_of("gaussian_blur")) {
    const json& c = fixtures().find(name);
    INFO("case " << name);
    RgbImage image = fixtures().input(c["input"]);
    gaussian_blur(image, c["params"]["kernel_size"], c["params"]["sigma"]);
    const auto expected = fixtures().expected_bytes(c);
    std::size_t off_by_one = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const int diff = std::abs(int(image.pixels[i]) - int(expected[i]));
      REQUIRE(diff <= 1);
      off_by_one += diff;
    }
    CHECK(off_by_one * 1000 <= expected.size());
  }
  RgbImage tiny;
  tiny.width = 4, tiny.height = 9;
  tiny.pixels.assign(4 * 9 * 3, 0);
  REQUIRE_THROWS_WITH(gaussian_blur(tiny, 9, 1.0), Catch::Contains("too small for reflect padding by 4"));
}

TEST_CASE("normalisation is torchvision's ToTensor + Normalize", "[augment][parity]") {
  const json& c = fixtures().find("normalize");
  const RgbImage image = fixtures().input(c["input"]);
  REQUIRE(image.width == image.height);
  std::vector<float> out(image.pixels.size());
  normalise_crop(image.pixels.data(), image.width, out.data());
  const std::size_t offset = c["output"]["offset"];
  std::vector<float> expected(out.size());
  std::memcpy(expected.data(), fixtures().data.data() + offset, expected.size() * sizeof(float));
  float worst = 0;
  for (std::size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - expected[i]));
  CHECK(worst == 0.0f);
}

TEST_CASE("random resized crop boxes follow torchvision's get_params, fallback included", "[augment][parity]") {
  for (const auto& rrc : fixtures().meta["random_resized_crop"]) {
    std::vector<double> draws;
    for (const auto& attempt : rrc["draws"])
      for (const auto& u : attempt) draws.push_back(u);
    std::size_t next = 0;
    const CropBox box = random_resized_crop_box(rrc["height"], rrc["width"], {rrc["scale"][0], rrc["scale"][1]}, {3.0 / 4.0, 4.0 / 3.0},
                                                [&] { return draws.at(next++); });
    const CropBox expected{rrc["box"][0], rrc["box"][1], rrc["box"][2], rrc["box"][3]};
    INFO("image " << rrc["height"] << "x" << rrc["width"] << ": got top " << box.top << " left " << box.left << " " << box.height << "x" << box.width);
    CHECK(box == expected);
  }
}
