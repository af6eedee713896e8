// Encoder throughput: images per second, achieved GFLOP/s, and that figure as a fraction of a matrix-multiply
// peak measured in the same run on the same machine, for each backbone, precision and batch size.
//   build/bin/bench_encoders [--backbones resnet50,dinov2_vits14] [--batches 16,32] [--precisions fp32,bf16]
//                            [--threads N] [--seconds S] [--json FILE]
#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "histoflow/cpu_kernels.hpp"
#include "histoflow/threads.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"

using namespace histoflow::torch_encoders;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// Multiply-adds counted as two FLOPs, for one image of `size` x `size` pixels.
double vit_flops(const BackboneSpec& spec, int size) {
  const bool swiglu = spec.name.find("vitg") != std::string::npos;
  const double d = spec.dim, patches = std::pow(size / 14, 2);
  const double depth = spec.name.find("vits") != std::string::npos || spec.name.find("vitb") != std::string::npos ? 12
                       : spec.name.find("vitl") != std::string::npos                                               ? 24
                                                                                                                   : 40;
  const double n = patches + 1 + (spec.name.find("_reg") != std::string::npos ? 4 : 0);
  const double hidden = swiglu ? swiglu_hidden_width(static_cast<int>(d), 4.0) : 4 * d;
  const double mlp = swiglu ? 2 * n * d * 2 * hidden + 2 * n * hidden * d : 2 * 2 * n * d * hidden;
  const double block = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + mlp;
  return depth * block + 2 * patches * 3 * 14 * 14 * d;
}

double resnet_flops(bool truncated, int size) {
  double flops = 0;
  int s = size / 2;  // conv1, stride 2
  flops += 2.0 * s * s * 64 * 3 * 49;
  s /= 2;  // max pool
  int in = 64;
  const int planes[4] = {64, 128, 256, 512}, blocks[4] = {3, 4, 6, 3};
  for (int stage = 0; stage < (truncated ? 3 : 4); ++stage)
    for (int b = 0; b < blocks[stage]; ++b) {
      const int stride = (b == 0 && stage > 0) ? 2 : 1, p = planes[stage];
      const int out = s / stride;
      flops += 2.0 * s * s * p * in;           // 1x1 reduce (at the input resolution)
      flops += 2.0 * out * out * p * p * 9;    // 3x3 (strided)
      flops += 2.0 * out * out * p * 4 * p;    // 1x1 expand
      if (b == 0) flops += 2.0 * out * out * p * 4 * in;  // downsample
      in = p * 4;
      s = out;
    }
  return flops;
}

// Runs `step` in `windows` windows of at least `seconds / windows` each (and 2 calls); the rate of each window.
std::vector<double> rates_per_window(const std::function<void()>& step, double seconds, int windows = 5) {
  std::vector<double> rates;
  for (int w = 0; w < windows; ++w) {
    int runs = 0;
    const auto start = Clock::now();
    while (runs < 2 || std::chrono::duration<double>(Clock::now() - start).count() < seconds / windows) {
      step();
      ++runs;
    }
    rates.push_back(runs / std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(rates.begin(), rates.end());
  return rates;
}

// The machine's matrix-multiply rate for this dtype and thread count: a 2048^3 product, the best of several
// windows (the fairest ceiling on a shared machine: the fraction of peak is then, if anything, understated).
double peak_gflops(torch::Dtype dtype, double seconds) {
  const auto a = torch::randn({2048, 2048}).to(dtype), b = torch::randn({2048, 2048}).to(dtype);
  torch::InferenceMode guard;
  torch::mm(a, b);
  return rates_per_window([&] { torch::mm(a, b); }, seconds).back() * 2.0 * 2048 * 2048 * 2048 / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  histoflow::use_widest_cpu_kernels();  // the kernels flowrun runs on
  std::vector<std::string> backbones{"resnet50", "resnet50_trunc", "dinov2_vits14"}, precisions{"fp32", "bf16"};
  std::vector<int> batches{16, 32};
  int threads = 0;  // 0: every core
  double seconds = 4;
  std::string json_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--backbones") backbones = split(value);
    else if (key == "--precisions") precisions = split(value);
    else if (key == "--batches") {
      batches.clear();
      for (const auto& b : split(value)) batches.push_back(std::stoi(b));
    } else if (key == "--threads") threads = std::stoi(value);
    else if (key == "--seconds") seconds = std::stod(value);
    else if (key == "--json") json_file = value;
    else {
      std::cerr << "unknown option " << key << "\n";
      return 2;
    }
  }
  threads = histoflow::resolve_thread_count(threads);
  at::set_num_threads(threads);
  std::map<std::string, double> peak;
  for (const auto& p : precisions) peak[p] = peak_gflops(p == "bf16" ? torch::kBFloat16 : torch::kFloat32, 3.0);
  std::printf("encoder benchmark: %d threads; matrix-multiply peak (2048^3, best of 5):", threads);
  for (const auto& [p, g] : peak) std::printf(" %s %.0f GFLOP/s", p.c_str(), g);
  std::printf("\n%-16s %-5s %6s %10s %10s %9s\n", "backbone", "prec", "batch", "images/s", "GFLOP/s", "of peak");  // images/s: median of 5 windows
  nlohmann::json results = nlohmann::json::array();
  for (const auto& name : backbones) {
    const BackboneSpec& spec = find_backbone(name);
    const double flops = spec.family == "vit" ? vit_flops(spec, 224) : resnet_flops(name == "resnet50_trunc", 224);
    for (const auto& precision : precisions) {
      const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
      auto backbone = spec.create();
      deterministic_init(backbone->module());
      prepare_for_inference(*backbone, spec, torch::kCPU, dtype);
      for (const int batch : batches) {
        torch::InferenceMode guard;
        auto x = torch::randn({batch, 3, 224, 224}).to(dtype);
        if (spec.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        backbone->forward(x);  // warm-up: oneDNN primitive creation, allocator
        // The median of five windows: one slow window on a shared machine does not move it.
        const auto rates = rates_per_window([&] { backbone->forward(x); }, seconds);
        const double images = rates[rates.size() / 2] * batch, gflops = images * flops / 1e9;
        std::printf("%-16s %-5s %6d %10.1f %10.1f %8.0f%%\n", name.c_str(), precision.c_str(), batch, images, gflops,
                    100 * gflops / peak[precision]);
        std::fflush(stdout);
        results.push_back({{"backbone", name}, {"precision", precision}, {"batch", batch}, {"images_per_second", images},
                           {"gflops", gflops}, {"peak_gflops", peak[precision]}, {"threads", threads},
                           {"best_images_per_second", rates.back() * batch}});
      }
    }
  }
  if (!json_file.empty()) std::ofstream(json_file) << results.dump(2) << "\n";
  return 0;
}
