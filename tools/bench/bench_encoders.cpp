// Encoder throughput: images per second, achieved GFLOP/s, and that figure as a fraction of a matrix-multiply
// peak measured in the same run on the same machine, for each backbone, precision and batch size.
//   build/bin/bench_encoders [--backbones resnet50,dinov2_vits14] [--batches 16,32] [--precisions fp32,bf16]
//                            [--threads N] [--seconds S] [--json FILE] [--device cpu|cuda|cuda:N]
// On the CPU the model is cast to the precision, as the encoder does there; on CUDA it stays fp32 and bf16/fp16
// run under autocast (the encoder's CUDA path), each forward pass timed to its end on the device.
#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cpu_kernels.hpp"
#include "histoflow/threads.hpp"
#include "histoflow/torch_encoders/autocast.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/cpu_tensor_cache.hpp"
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

// Multiply-adds counted as two FLOPs, for one image of `size` x `size` pixels, read off the model itself (patch
// size, width, depth, the blocks' projection matrices, register tokens), so every ViT layout counts right.
double vit_flops(Backbone& backbone, int size) {
  TrainableVit& vit = *backbone.trainable_vit();
  const double d = vit.dim(), patches = std::pow(size / vit.patch_size(), 2);
  double projections = 0, prefix = 1;  // weights of the blocks' linear layers; class token plus registers
  for (const auto& p : backbone.module().named_parameters(true)) {
    if (p.key().rfind("blocks.", 0) == 0 && p.value().dim() == 2) projections += static_cast<double>(p.value().numel());
    if (p.key() == "register_tokens" || p.key() == "reg_token") prefix += static_cast<double>(p.value().size(1));
  }
  const double n = patches + prefix;
  return 2 * n * projections + vit.depth() * 2 * 2 * n * n * d + 2 * patches * 3 * vit.patch_size() * vit.patch_size() * d;
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
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

// The machine's matrix-multiply rate for this dtype and thread count: a 2048^3 product on the CPU, 8192^3 on a
// GPU, the best of several windows (the fairest ceiling on a shared machine: the fraction of peak is then, if
// anything, understated).
double peak_gflops(torch::Dtype dtype, double seconds, torch::Device device) {
  const std::int64_t n = device.is_cuda() ? 8192 : 2048;
  const auto a = torch::randn({n, n}).to(device, dtype), b = torch::randn({n, n}).to(device, dtype);
  torch::InferenceMode guard;
  torch::mm(a, b);
  synchronize(device);
  const auto step = [&] {
    torch::mm(a, b);
    synchronize(device);
  };
  return rates_per_window(step, seconds).back() * 2.0 * static_cast<double>(n * n * n) / 1e9;
}

torch::Dtype dtype_of(const std::string& precision) {
  return precision == "bf16" ? torch::kBFloat16 : precision == "fp16" ? torch::kHalf : torch::kFloat32;
}

}  // namespace

int main(int argc, char** argv) {
  histoflow::use_widest_cpu_kernels();  // the kernels flowrun runs on
  std::vector<std::string> backbones{"resnet50", "resnet50_trunc", "dinov2_vits14"}, precisions{"fp32", "bf16"};
  std::vector<int> batches{16, 32};
  int threads = 0;  // 0: every core
  double seconds = 4;
  std::string json_file, device_text = "cpu";
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
    else if (key == "--device") device_text = value;
    else {
      std::cerr << "unknown option " << key << "\n";
      return 2;
    }
  }
  threads = histoflow::resolve_thread_count(threads);
  at::set_num_threads(threads);
  const torch::Device device = parse_device(device_text);
  if (device.is_cpu()) install_cpu_tensor_cache();  // as the torch_encoder stage does
  std::map<std::string, double> peak;
  for (const auto& p : precisions) peak[p] = peak_gflops(dtype_of(p), 3.0, device);
  std::printf("encoder benchmark: %s, %d threads; matrix-multiply peak (%s, best of 5):", device.str().c_str(), threads,
              device.is_cuda() ? "8192^3" : "2048^3");
  for (const auto& [p, g] : peak) std::printf(" %s %.0f GFLOP/s", p.c_str(), g);
  std::printf("\n%-16s %-5s %6s %10s %10s %9s\n", "backbone", "prec", "batch", "images/s", "GFLOP/s", "of peak");  // images/s: median of 5 windows
  nlohmann::json results = nlohmann::json::array();
  for (const auto& name : backbones) {
    const BackboneSpec& spec = find_backbone(name);
    for (const auto& precision : precisions) {
      const auto dtype = dtype_of(precision);
      // CUDA: fp32 weights and inputs, the products in the precision under autocast.
      const bool autocast = device.is_cuda() && dtype != torch::kFloat32;
      const auto model_dtype = autocast ? torch::kFloat32 : dtype;
      auto backbone = spec.create();
      deterministic_init(backbone->module());
      // Counted for ViTs and ResNets; other families show 0 GFLOP/s.
      const double flops = backbone->trainable_vit() ? vit_flops(*backbone, 224)
                           : spec.family == "resnet"  ? resnet_flops(name == "resnet50_trunc", 224)
                                                      : 0.0;
      prepare_for_inference(*backbone, spec, device, model_dtype);
      for (const int batch : batches) {
        torch::InferenceMode guard;
        std::optional<AutocastScope> mixed;
        if (autocast) mixed.emplace(device.type(), dtype);
        auto x = torch::randn({batch, 3, 224, 224}).to(device, model_dtype);
        if (spec.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        const auto step = [&] {
          backbone->forward(x);
          synchronize(device);
        };
        for (int i = 0; i < (device.is_cuda() ? 3 : 1); ++i) step();  // warm-up: oneDNN primitives, cuBLAS handles, allocator
        // The median of five windows: one slow window on a shared machine does not move it.
        const auto rates = rates_per_window(step, seconds);
        const double images = rates[rates.size() / 2] * batch, gflops = images * flops / 1e9;
        std::printf("%-16s %-5s %6d %10.1f %10.1f %8.0f%%\n", name.c_str(), precision.c_str(), batch, images, gflops,
                    100 * gflops / peak[precision]);
        std::fflush(stdout);
        results.push_back({{"backbone", name}, {"precision", precision}, {"batch", batch}, {"images_per_second", images},
                           {"gflops", gflops}, {"peak_gflops", peak[precision]}, {"threads", threads},
                           {"best_images_per_second", rates.back() * batch}, {"device", device.str()},
                           {"autocast", autocast}});
        // Written after every row: a run stopped by a time limit (tools/gpu/check's phases) keeps what it measured.
        if (!json_file.empty()) histoflow::write_file_atomically(json_file, results.dump(2) + "\n");
      }
    }
  }
  if (!json_file.empty() && results.empty()) histoflow::write_file_atomically(json_file, "[]\n");
  return 0;
}
