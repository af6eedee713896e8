#pragma once
// Reading the reference fixtures of tests/fixtures/encoders (tools/parity/make_*.py) and comparing against them:
// shared by the encoder test files.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/weights.hpp"

namespace histoflow::torch_encoders::fixtures {

// Where the parity tests run their models: HISTOFLOW_TEST_DEVICE (cpu, cuda or cuda:N; default cpu), so that
// tools/gpu/check runs the same comparisons on a GPU. There TF32 is off: the tolerances are fp32's.
inline torch::Device test_device() {
  static const torch::Device device = [] {
    const char* text = std::getenv("HISTOFLOW_TEST_DEVICE");
    const torch::Device chosen = parse_device(text && *text ? text : "cpu");
    if (chosen.is_cuda()) {
      at::globalContext().setAllowTF32CuDNN(false);
      at::globalContext().setAllowTF32CuBLAS(false);
    }
    return chosen;
  }();
  return device;
}

// `net` with its parameters and buffers on the test device.
inline std::unique_ptr<Backbone> on_test_device(std::unique_ptr<Backbone> net) {
  net->module().to(test_device());
  return net;
}

inline const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

// A fixture file's tensors, read with histoflow's own safetensors reader.
inline std::map<std::string, torch::Tensor> fixture(const std::string& name) {
  return read_weights(kFixtures / (name + ".safetensors")).tensors;
}

// Computed in float64 on the CPU, wherever `ours` was computed.
inline double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  const auto a = ours.to(torch::kCPU, torch::kFloat64), b = reference.to(torch::kCPU, torch::kFloat64);
  return ((a - b).norm() / b.norm()).item<double>();
}

// uint8 NHWC tiles -> the ImageNet-normalised float NCHW batch the references were given (on the CPU).
inline torch::Tensor preprocess(const torch::Tensor& uint8_nhwc) {
  auto x = uint8_nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  return (x - mean) / std;
}

// Prints the error (the parity numbers show in the test log) and checks it against the parity tolerance.
inline void report(const std::string& what, double error) {
  std::cout << "parity " << what << ": relative L2 error " << error << std::endl;
  CHECK(error < 1e-4);
}

// name -> shape, as a .keys.txt fixture lists a reference state_dict ("name [d0, d1] dtype" per line, in order).
inline std::vector<std::pair<std::string, std::vector<std::int64_t>>> reference_shapes(const std::string& name) {
  std::ifstream in(kFixtures / (name + ".keys.txt"));
  REQUIRE(in);
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes;
  for (std::string line; std::getline(in, line);) {
    const auto open = line.find('['), close = line.find(']');
    std::vector<std::int64_t> shape;
    std::istringstream dims(line.substr(open + 1, close - open - 1));
    for (std::string d; std::getline(dims, d, ',');) shape.push_back(std::stoll(d));
    shapes.emplace_back(line.substr(0, line.find(' ')), shape);
  }
  return shapes;
}

// A state_dict with a reference's names and shapes and no memory behind it (zeros broadcast to each shape).
inline LoadedWeights weights_shaped_like(const std::string& keys_fixture) {
  LoadedWeights w;
  for (const auto& [name, shape] : reference_shapes(keys_fixture))
    w.tensors[name] = shape.empty() ? torch::zeros({}) : torch::zeros({1}).expand(shape);
  return w;
}

}  // namespace histoflow::torch_encoders::fixtures
