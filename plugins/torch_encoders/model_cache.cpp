#include "model_cache.hpp"

#include <torch/cuda.h>

#include <map>
#include <mutex>
#include <tuple>

#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "torchscript.hpp"

namespace histoflow::torch_encoders {
namespace {

// backbone, weights (canonical path, size, mtime; empty for synthetic), device, dtype
using ModelKey = std::tuple<std::string, std::string, std::uintmax_t, std::int64_t, std::string, int>;

struct Cache {
  std::mutex mutex;
  std::map<ModelKey, std::pair<std::weak_ptr<Backbone>, std::string>> models;  // model, identity
  std::size_t loads = 0;
};

Cache& cache() {
  static Cache instance;
  return instance;
}

ModelKey key_of(const ModelRequest& request) {
  std::string file;
  std::uintmax_t size = 0;
  std::int64_t mtime = 0;
  if (!request.synthetic) {
    file = std::filesystem::weakly_canonical(request.weights_file).string();
    std::error_code ec;
    size = std::filesystem::file_size(request.weights_file, ec);
    mtime = std::filesystem::last_write_time(request.weights_file, ec).time_since_epoch().count();
  }
  return {request.spec->name, file, size, mtime, request.device.str(), static_cast<int>(request.dtype)};
}

SharedModel load(const ModelRequest& request) {
  const BackboneSpec& spec = *request.spec;
  SharedModel model;
  if (spec.family == "torchscript") {
    model.backbone = load_torchscript(request.weights_file);
    model.identity = sha256_file(request.weights_file.string());
  } else if (request.synthetic) {
    model.backbone = spec.create();
    deterministic_init(model.backbone->module());
    model.identity = "histoflow-init-v1";
  } else {
    model.backbone = spec.create();
    const LoadedWeights weights = read_weights(request.weights_file.string());
    load_into(*model.backbone, weights, request.weights_file.string());
    model.identity = weights.sha256;
  }
  prepare_for_inference(*model.backbone, spec, request.device, request.dtype);
  // Copies to the GPU run on the legacy default stream, which the encoder's pooled streams do not wait for: the
  // model is ready on every stream only once they have finished.
  if (request.device.is_cuda()) torch::cuda::synchronize(request.device.index());
  return model;
}

}  // namespace

SharedModel shared_model(const ModelRequest& request) {
  const ModelKey key = key_of(request);
  Cache& c = cache();
  // Loading holds the lock: a second stage asking for the same model waits for it instead of loading it too.
  std::lock_guard lock(c.mutex);
  if (auto it = c.models.find(key); it != c.models.end())
    if (auto backbone = it->second.first.lock()) return {std::move(backbone), it->second.second};
  SharedModel model = load(request);
  ++c.loads;
  c.models[key] = {model.backbone, model.identity};
  return model;
}

std::size_t models_loaded() {
  std::lock_guard lock(cache().mutex);
  return cache().loads;
}

}  // namespace histoflow::torch_encoders
