// The encoder stage: batches of uint8 tiles in, one feature row per tile out, with provenance.
// Preprocessing runs on the target device; the model runs in inference mode at the chosen precision. On the CPU
// the whole model is cast to that precision; on CUDA it stays fp32 and bf16/fp16 run under autocast, with the
// batch streamed through pinned buffers (cuda_batches.hpp).
#include <algorithm>
#include <optional>

#include "histoflow/kind.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/threads.hpp"
#include "histoflow/torch_encoders/autocast.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/cpu_tensor_cache.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "cuda_batches.hpp"
#include "model_cache.hpp"
#include "torch_stages.hpp"

namespace histoflow::torch_encoders {
namespace {

class TorchEncoder final : public Stage {
 public:
  explicit TorchEncoder(const StageContext& context)
      : id_(context.stage_id), spec_(find_backbone(context.params.get_string("backbone"))), device_(torch::kCPU) {
    const Params& p = context.params;
    if (p.has("weights")) weights_file_ = p.get_string("weights");
    synthetic_ = p.get_bool("synthetic_weights");
    if (weights_file_.empty() == !synthetic_)
      throw std::invalid_argument("give weights = \"<file>\", or synthetic_weights = true for tests (not both)");
    device_text_ = p.get_string("device");
    precision_ = p.get_string("precision");
    threads_ = p.get_int("threads");
    streams_ = static_cast<int>(p.get_int("streams"));
    output_ = p.get_string("output");
    if (output_ == "auto") output_ = spec_.outputs.front();
    if (std::find(spec_.outputs.begin(), spec_.outputs.end(), output_) == spec_.outputs.end()) {
      std::string known;
      for (const auto& o : spec_.outputs) known += (known.empty() ? "" : ", ") + o;
      throw std::invalid_argument("output '" + output_ + "' is not available for " + spec_.name + " (it gives: " + known + ")");
    }
    input_size_ = p.get_int("input_size") > 0 ? p.get_int("input_size") : spec_.input_size;
    mean_values_ = p.get_float_list("mean").empty() ? std::vector<double>(spec_.mean.begin(), spec_.mean.end()) : p.get_float_list("mean");
    std_values_ = p.get_float_list("std").empty() ? std::vector<double>(spec_.std.begin(), spec_.std.end()) : p.get_float_list("std");
    if (mean_values_.size() != 3 || std_values_.size() != 3) throw std::invalid_argument("mean and std need 3 values (R, G, B)");
    for (double s : std_values_)
      if (!(s > 0)) throw std::invalid_argument("std values must be positive");
    output_size_ = p.get_int("output_size");
    name_ = p.get_string("name").empty() ? spec_.name : p.get_string("name");
    row_attribute_names_ = p.get_list("row_attributes");
    if (spec_.family == "torchscript" && synthetic_) throw std::invalid_argument("a torchscript backbone needs weights = \"<file.pt>\"");
  }

  void open() override {
    device_ = parse_device(device_text_);
    if (precision_ == "fp16" && !device_.is_cuda()) throw FatalError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32");
    // LibTorch defaults to one intra-op thread here: the encoder owns the cores it is given.
    at::set_num_threads(resolve_thread_count(threads_));
    if (device_.is_cpu()) install_cpu_tensor_cache();  // no page faults for each batch's activations
    const torch::Dtype precision = precision_ == "bf16" ? torch::kBFloat16 : precision_ == "fp16" ? torch::kFloat16 : torch::kFloat32;
    // CPU: the whole model in the precision (its fast path there). CUDA: fp32 weights, and bf16/fp16 products under
    // autocast, as torch.autocast runs them (normalisations and softmax in fp32).
    dtype_ = device_.is_cuda() ? torch::kFloat32 : precision;
    if (device_.is_cuda() && precision != torch::kFloat32) autocast_ = precision;
    // Stages with the same backbone, weights, device and precision share one model (one load, one copy).
    SharedModel model = [&] {
      CpuTensorCacheBypass loading;
      return shared_model({&spec_, weights_file_, synthetic_, device_, dtype_});
    }();
    backbone_ = std::move(model.backbone);
    identity_ = std::move(model.identity);
    // A ViT's weights fix its position grid (a teacher finetuned at 224 px holds 16 x 16, the hub models 37 x 37).
    if (TrainableVit* vit = backbone_->trainable_vit()) position_grid_ = vit->position_grid();
    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
    mean_ = torch::tensor(mean_values_, options).view({1, 3, 1, 1});
    std_ = torch::tensor(std_values_, options).view({1, 3, 1, 1});
    if (device_.is_cuda()) cuda_ = std::make_unique<CudaBatches>(device_, streams_);
  }

  void process(const PacketPtr& batch, std::size_t, Emitter& out) override {
    const auto& members = batch->members;
    const Tensor& first = members.front()->tensor;
    if (first.dtype() != DType::UInt8 || first.dim() != 3 || first.shape()[2] != 3)
      throw std::invalid_argument("stage '" + id_ + "': tile '" + members.front()->provenance.item_id + "' is " + first.describe() +
                                  ", expected uint8 [H, W, 3]");
    const auto h = first.shape()[0], w = first.shape()[1];
    for (const auto& member : members) {
      const Tensor& t = member->tensor;
      if (t.dtype() != DType::UInt8 || t.shape() != first.shape() || !t.is_contiguous())
        throw std::invalid_argument("stage '" + id_ + "': tile '" + member->provenance.item_id + "' is " + t.describe() +
                                    ", but the batch's first tile is " + first.describe());
    }
    torch::Tensor features;
    if (cuda_) {
      std::vector<const std::uint8_t*> tiles;
      for (const auto& member : members) tiles.push_back(static_cast<const std::uint8_t*>(member->tensor.raw_data()));
      features = cuda_->encode(tiles, h, w, [this](const torch::Tensor& on_device) { return encode(on_device); });
    } else {
      auto host = torch::empty({static_cast<std::int64_t>(members.size()), h, w, 3}, torch::kUInt8);
      auto* dst = host.data_ptr<std::uint8_t>();
      for (std::size_t i = 0; i < members.size(); ++i)
        std::memcpy(dst + i * first.nbytes(), members[i]->tensor.raw_data(), first.nbytes());
      torch::InferenceMode inference;
      features = encode(host).to(torch::kCPU, torch::kFloat32).contiguous();
    }
    if (output_size_ > 0 && features.size(1) != output_size_)
      throw FatalError("the model gives " + std::to_string(features.size(1)) + " features per tile, but output_size = " +
                       std::to_string(output_size_));

    Packet result;
    result.kind = kinds::kFeatures;
    auto owner = std::make_shared<torch::Tensor>(features);  // the framework tensor shares torch's buffer
    result.tensor = Tensor::wrap(owner->data_ptr(), DType::Float32, owner->sizes().vec(), {}, owner);
    set_rows_from(members, result, row_attribute_names_);
    result.attributes["encoder"] = name_;
    result.attributes["weights_sha256"] = identity_;
    result.attributes["output"] = output_;
    result.attributes["precision"] = precision_;
    if (position_grid_ > 0) result.attributes["position_grid"] = static_cast<std::int64_t>(position_grid_);
    out.emit(std::move(result));
  }

 private:
  // uint8 [B, H, W, 3] tiles on the device -> the chosen output, [B, D] on the device (inference mode).
  torch::Tensor encode(const torch::Tensor& tiles) {
    std::optional<AutocastScope> autocast;
    if (autocast_) autocast.emplace(device_.type(), *autocast_);
    auto x = tiles.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);
    if (x.size(2) != input_size_ || x.size(3) != input_size_)
      x = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                    .size(std::vector<std::int64_t>{input_size_, input_size_})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false)
                                                    .antialias(true));
    x = ((x - mean_) / std_).to(dtype_);
    if (spec_.channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const BackboneOutput y = backbone_->forward(x);
    if (output_ == "cls") return y.cls;
    if (output_ == "mean_patch") return y.patch_tokens.mean(1);
    if (output_ == "cls+mean_patch") return torch::cat({y.cls, y.patch_tokens.mean(1)}, 1);
    return y.pooled;
  }

  // The model's identity beyond the parameters: what the weights file holds.
  std::string identity() const override { return identity_; }

  std::string id_;
  std::vector<std::string> row_attribute_names_;
  const BackboneSpec& spec_;
  std::filesystem::path weights_file_;
  bool synthetic_ = false;
  std::string device_text_, precision_, output_, identity_, name_;
  std::int64_t threads_ = 0, input_size_ = 224, output_size_ = 0;
  int streams_ = 2;
  int position_grid_ = 0;  // 0: not a vision transformer
  std::vector<double> mean_values_, std_values_;
  torch::Device device_;
  torch::Dtype dtype_ = torch::kFloat32;             // the model's and its inputs'
  std::optional<torch::Dtype> autocast_;             // CUDA bf16/fp16: the products' precision
  std::shared_ptr<Backbone> backbone_;
  torch::Tensor mean_, std_;
  std::unique_ptr<CudaBatches> cuda_;                // CUDA devices only
};

}  // namespace

void register_torch_encoder(Registry& registry) {
  StageContract c;
  c.type = "torch_encoder";
  c.summary = "Encodes batches of tiles with a foundation-model backbone (LibTorch), one feature row per tile";
  c.doc = "Preprocessing on the target device: float conversion, resize to the backbone's input size when tiles\n"
          "differ (bilinear, antialiased), mean/std normalisation. Inference mode, no autograd state. On CUDA the\n"
          "model stays fp32 and bf16/fp16 run under autocast, and tiles go through pinned buffers on `streams`\n"
          "streams. The SHA-256 of the weights file is the model's identity (attribute weights_sha256); a vision\n"
          "transformer's packets also carry position_grid, the grid of position embeddings its weights hold.\n"
          "Backbones: `flowrun describe torch_encoder` lists them under `backbone`; docs/encoders.md describes each.";
  c.inputs = {{"tiles", kinds::kTile, "uint8 [H, W, 3] tiles (batched by the framework)"}};
  c.outputs = {{"features", kinds::kFeatures, "float32 [batch, D] with one provenance per row"}};
  ParamSpec backbone = param_required("backbone", ParamType::String, "Backbone configuration (plugins may add more)");
  backbone.dynamic_choices = [] { return backbone_names(); };  // read after every plugin has registered its own
  c.params = {backbone,
              // The file's SHA-256 is the encoder's identity, so where it lies does not matter.
              not_affecting_output(param_path("weights", "Weights: .safetensors, or a PyTorch .pth/.pt checkpoint")),
              param_bool("synthetic_weights", false, "Deterministic pseudo-random weights (histoflow-init-v1), for tests and benchmarks"),
              not_affecting_output(param_string("device", "auto", "auto (CUDA when present), cpu, cuda or cuda:N")),
              param_string("precision", "fp32", "fp32; bf16 (CPU with AMX, or GPU); fp16 (GPU only)", {"fp32", "bf16", "fp16"}),
              not_affecting_output(param_int("threads", 0, "Intra-op threads for LibTorch; 0: all cores", 0, 1024)),
              not_affecting_output(param_int("streams", 2,
                                             "CUDA only: each batch runs as this many micro-batches, each on a stream of its own with "
                                             "pinned buffers reused across batches, so that copies overlap compute; 1: one stream",
                                             1, 16)),
              not_affecting_output(param_string_list("row_attributes", kDefaultRowAttributes,
                                                        "Tile attributes kept per feature row (patch datasets: label, class, path)")),
              param_string("output", "auto", "cls, mean_patch or cls+mean_patch (token models), pooled (CNNs); auto: the first the backbone offers",
                           {"auto", "cls", "mean_patch", "cls+mean_patch", "pooled"}),
              param_int("input_size", 0, "Square input size in pixels; 0: the backbone's default", 0, 4096),
              param_float_list("mean", {}, "Normalisation mean (R, G, B); empty: the backbone's"),
              param_float_list("std", {}, "Normalisation standard deviation (R, G, B); empty: the backbone's"),
              param_int("output_size", 0, "Expected features per tile (checked); 0: not checked", 0, 1 << 20),
              param_string("name", "", "The encoder's name in feature files, evaluations and tables; empty: the backbone's. Two "
                                       "encoders of one backbone (original and finetuned weights) need names of their own")};
  c.rules = {rule_exactly_one_of("weights", "synthetic_weights"), rule_file_exists("weights"),
             {"'output' must be one the backbone offers (`flowrun describe backbone NAME` lists them)",
              [](RuleCheck& check) {
                const auto* name = std::get_if<std::string>(&check.param("backbone"));
                const auto* output = std::get_if<std::string>(&check.param("output"));
                if (!name || !output || *output == "auto") return;
                const BackboneSpec& spec = find_backbone(*name);
                if (std::find(spec.outputs.begin(), spec.outputs.end(), *output) != spec.outputs.end()) return;
                std::string offered;
                for (const auto& o : spec.outputs) offered += (offered.empty() ? "'" : ", '") + o + "'";
                check.error("output", "output '" + *output + "' is not offered by backbone '" + *name + "' (" + spec.family +
                                          "), which gives " + offered);
              }}};
  c.batched = true;
  c.default_batch = 32;
  c.concurrency = Concurrency::Serial;  // one batch at a time; LibTorch uses all its threads inside
  c.example = "[stage.encode]\nuse = \"torch_encoder\"\ninput = \"read\"\nbackbone = \"dinov2_vits14\"\n"
              "weights = \"models/dinov2_vits14_pretrain.pth\"\nbatch = 64\nprecision = \"bf16\"\n";
  register_stage<TorchEncoder>(registry, std::move(c));
}

}  // namespace histoflow::torch_encoders
