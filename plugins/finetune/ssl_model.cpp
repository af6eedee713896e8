#include "ssl_model.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <optional>

#include "histoflow/torch_encoders/weights.hpp"

namespace histoflow::finetune {
namespace {

torch::Dtype compute_type(const std::string& precision) {
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") return torch::kHalf;
  return torch::kFloat;
}

// Head weights from a training checkpoint (the official teacher layout {"teacher": {"dino_head.…"}}), strictly:
// a head of another size is an error naming the file and the tensor.
void load_head(DinoHead& head, const std::string& name, const torch_encoders::LoadedWeights& weights, const std::string& file) {
  std::string prefix;
  for (const std::string& candidate : {"teacher." + name + ".", name + ".", "student." + name + "."})
    if (weights.tensors.count(candidate + "last_layer.weight_v")) {
      prefix = candidate;
      break;
    }
  if (prefix.empty()) return;  // no head in the file: the head starts from its own initialisation
  torch::NoGradGuard no_grad;
  for (auto& p : head->named_parameters(true)) {
    const auto it = weights.tensors.find(prefix + p.key());
    if (it == weights.tensors.end()) throw std::runtime_error("'" + file + "' has a " + name + " without '" + prefix + p.key() + "'");
    if (it->second.sizes() != p.value().sizes()) {
      std::ostringstream text;
      text << "'" << file << "': " << prefix << p.key() << " has shape " << it->second.sizes() << " but the configured " << name
           << " needs " << p.value().sizes() << " (set [dino] head_n_prototypes / head_hidden_dim / head_bottleneck_dim to the checkpoint's)";
      throw std::runtime_error(text.str());
    }
    p.value().copy_(it->second);
  }
}

torch_encoders::TrainableVit* trainable(torch_encoders::Backbone& backbone, const std::string& name) {
  auto* vit = backbone.trainable_vit();
  if (!vit)
    throw std::invalid_argument("backbone '" + name + "' has no CLS token and patch grid: self-supervised finetuning (DINO + iBOT) needs a vision transformer");
  return vit;
}

}  // namespace

std::vector<std::pair<std::string, torch::nn::Module*>> SslNetwork::modules() {
  std::vector<std::pair<std::string, torch::nn::Module*>> out{{"backbone", &backbone->module()}, {"dino_head", dino_head.get()}};
  if (ibot_head) out.emplace_back("ibot_head", ibot_head.get());
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> SslNetwork::named_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, module] : modules())
    for (const auto& p : module->named_parameters(true)) out.emplace_back(name + "." + p.key(), p.value());
  return out;
}

SslModel::SslModel(const SslConfig& config)
    : config_(config),
      dino_centre_({1, config.dino_head.prototypes}, config.center_momentum),
      ibot_centre_({1, 1, config.ibot_separate_head ? config.ibot_head.prototypes : config.dino_head.prototypes}, config.center_momentum),
      generator_(at::detail::createCPUGenerator(config.seed)) {
  const auto& spec = torch_encoders::find_backbone(config.backbone);
  auto student = spec.create();
  auto teacher = spec.create();
  trainable(*student, config.backbone);
  std::optional<torch_encoders::LoadedWeights> weights;
  if (config.synthetic_weights) {
    torch_encoders::deterministic_init(student->module());
    source_sha256_ = "histoflow-init-v1";
  } else {
    weights = torch_encoders::read_weights(config.weights);
    torch_encoders::load_into(*student, *weights, config.weights);
    source_sha256_ = weights->sha256;
  }
  build(std::move(student), std::move(teacher));
  if (weights) {
    load_head(student_.dino_head, "dino_head", *weights, config.weights);
    if (student_.ibot_head) load_head(student_.ibot_head, "ibot_head", *weights, config.weights);
    copy_student_to_teacher();
  }
}

SslModel::SslModel(const SslConfig& config, std::unique_ptr<torch_encoders::Backbone> student, std::unique_ptr<torch_encoders::Backbone> teacher)
    : config_(config),
      dino_centre_({1, config.dino_head.prototypes}, config.center_momentum),
      ibot_centre_({1, 1, config.ibot_separate_head ? config.ibot_head.prototypes : config.dino_head.prototypes}, config.center_momentum),
      generator_(at::detail::createCPUGenerator(config.seed)),
      source_sha256_("caller") {
  build(std::move(student), std::move(teacher));
}

void SslModel::build(std::unique_ptr<torch_encoders::Backbone> student, std::unique_ptr<torch_encoders::Backbone> teacher) {
  compute_ = compute_type(config_.precision);
  const auto method = torch_encoders::parse_position_resize(config_.position_resize);
  for (auto* network : {&student_, &teacher_}) {
    network->backbone = network == &student_ ? std::move(student) : std::move(teacher);
    network->vit = trainable(*network->backbone, config_.backbone);
    const int patch = network->vit->patch_size();
    if (config_.global_size % patch != 0 || config_.local_size % patch != 0)
      throw std::invalid_argument("crop sizes " + std::to_string(config_.global_size) + " and " + std::to_string(config_.local_size) +
                                  " must be multiples of the patch size " + std::to_string(patch));
    grid_ = config_.global_size / patch;
    network->vit->resize_position_grid(grid_, method);
    if (!network->vit->has_mask_token()) network->vit->add_mask_token();
    // The heads' initialisation draws from torch's global generator: seeded, so a seed gives the same heads (the
    // teacher's are overwritten by the copy below).
    torch::manual_seed(config_.seed);
    network->dino_head = DinoHead(network->vit->dim(), config_.dino_head);
    if (config_.ibot_separate_head) network->ibot_head = DinoHead(network->vit->dim(), config_.ibot_head);
  }
  copy_student_to_teacher();
  for (auto& [name, p] : teacher_.named_parameters()) p.set_requires_grad(false);
  for (auto& [name, module] : teacher_.modules()) module->eval();
  for (auto& [name, module] : student_.modules()) module->train();
}

void SslModel::copy_student_to_teacher() {
  torch::NoGradGuard no_grad;
  auto source = student_.named_parameters();
  auto target = teacher_.named_parameters();
  if (source.size() != target.size()) throw std::logic_error("student and teacher differ in their parameters");
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (target[i].second.sizes() != source[i].second.sizes()) target[i].second.set_data(torch::empty_like(source[i].second));
    target[i].second.copy_(source[i].second);
  }
}

void SslModel::to(torch::Device device) {
  for (auto* network : {&student_, &teacher_})
    for (auto& [name, module] : network->modules()) module->to(device);
  dino_centre_.to(device);
  ibot_centre_.to(device);
}

std::vector<double> SslModel::drop_path_rates() const {
  const int depth = student_.vit->depth();
  if (config_.drop_path_rate <= 0) return {};
  if (config_.drop_path_uniform) return std::vector<double>(static_cast<std::size_t>(depth), config_.drop_path_rate);
  std::vector<double> rates;  // np.linspace(0, rate, depth)
  for (int i = 0; i < depth; ++i) rates.push_back(depth == 1 ? 0.0 : config_.drop_path_rate * i / (depth - 1));
  return rates;
}

LossTerms SslModel::forward_backward(const SslBatch& batch, double teacher_temp, double loss_scale) {
  const std::int64_t n_global = 2, n_local = config_.local_number;
  const auto global = batch.global_crops, local = batch.local_crops;
  const auto& masks = batch.masks;
  const bool do_ibot = config_.ibot_loss_weight > 0, do_koleo = config_.koleo_loss_weight > 0;
  const bool sinkhorn = config_.centering == "sinkhorn_knopp";
  LossTerms terms;
  const torch_encoders::ParameterCastCache casts;  // bf16: each weight cast once per step

  // Teacher: global crops only; its CLS outputs swapped so that crop A is matched to crop B.
  torch::Tensor masked_teacher;  // teacher head outputs of the masked patches
  {
    torch::NoGradGuard no_grad;
    const auto tokens = teacher_.vit->forward_tokens(global, torch::Tensor(), {}, nullptr, compute_);
    const auto halves = tokens.cls.chunk(n_global);
    const auto cls = torch::cat({halves[1], halves[0]});
    const auto patches = do_ibot ? tokens.patch_tokens.flatten(0, 1).index_select(0, masks.indices) : torch::Tensor();
    if (do_ibot && !teacher_.ibot_head) {
      const auto out = teacher_.dino_head->forward(torch::cat({cls, patches}));  // heads answer in fp32
      terms.teacher_global_cls_head = out.slice(0, 0, cls.size(0));
      masked_teacher = out.slice(0, cls.size(0));
    } else {
      terms.teacher_global_cls_head = teacher_.dino_head->forward(cls);
      if (do_ibot) masked_teacher = teacher_.ibot_head->forward(patches);
    }
    const auto& t = terms.teacher_global_cls_head;
    // Over every process of a data-parallel run (their rows, their masked patches); this process's alone otherwise.
    const int world = collectives_ ? collectives_->world() : 1;
    std::function<void(torch::Tensor&)> sum_over_processes;
    if (world > 1) sum_over_processes = [this](torch::Tensor& x) { collectives_->sum(x); };
    const auto summed = [&](torch::Tensor x) {
      if (sum_over_processes) sum_over_processes(x);
      return x;
    };
    if (sinkhorn) {
      terms.dino_targets = sinkhorn_knopp(t, teacher_temp, config_.sinkhorn_iterations, static_cast<double>(t.size(0) * world), sum_over_processes)
                               .view({n_global, -1, t.size(1)});
      if (do_ibot) {
        const double masked = world > 1 ? summed(torch::full({1}, static_cast<double>(masks.masked), torch::kDouble)).item<double>()
                                        : static_cast<double>(masks.masked);
        terms.ibot_targets = sinkhorn_knopp(masked_teacher, teacher_temp, config_.sinkhorn_iterations, masked, sum_over_processes);
      }
    } else {
      terms.dino_targets = dino_centre_.centre_and_sharpen(t, teacher_temp).view({n_global, -1, t.size(1)});
      dino_centre_.record_update(summed(t.sum(0, true)), t.size(0) * world);
      if (do_ibot) {
        terms.ibot_targets = ibot_centre_.centre_and_sharpen(masked_teacher.unsqueeze(0), teacher_temp).squeeze(0);
        if (world == 1) {
          ibot_centre_.record_update(masked_teacher.unsqueeze(0).mean(1).sum(0, true), 1);
        } else {
          // The mean over every process's masked patches, as one process computes it. (The official code averages the
          // processes' means, which differs whenever they mask different numbers of patches.)
          auto count = summed(torch::full({1}, static_cast<double>(masked_teacher.size(0)), masked_teacher.options()));
          ibot_centre_.record_update(summed(masked_teacher.sum(0, true).unsqueeze(0)) / count, 1);
        }
      }
    }
  }

  // Student: global crops masked, local crops not; one head pass over every row it needs.
  const auto rates = drop_path_rates();
  const auto g = student_.vit->forward_tokens(global, do_ibot ? masks.masks : torch::Tensor(), rates, &generator_, compute_);
  const auto l = n_local > 0 ? student_.vit->forward_tokens(local, torch::Tensor(), rates, &generator_, compute_) : torch_encoders::BackboneOutput{};
  std::vector<torch::Tensor> rows;
  if (n_local > 0) rows.push_back(l.cls);
  rows.push_back(g.cls);
  const auto masked_student = do_ibot ? g.patch_tokens.flatten(0, 1).index_select(0, masks.indices) : torch::Tensor();
  if (do_ibot && !student_.ibot_head) rows.push_back(masked_student);
  std::vector<std::int64_t> sizes;
  for (const auto& r : rows) sizes.push_back(r.size(0));
  // split, not slices: its backward joins the parts' gradients once instead of zero-filling the whole output per part
  auto parts = student_.dino_head->forward(torch::cat(rows)).split_with_sizes(sizes);
  std::size_t next = 0;
  const auto local_out = n_local > 0 ? parts[next++] : torch::Tensor();
  const auto global_out = parts[next++];
  torch::Tensor masked_out;
  if (do_ibot) masked_out = student_.ibot_head ? student_.ibot_head->forward(masked_student) : parts[next++];
  terms.student_global_cls_head = global_out;

  const double local_terms = static_cast<double>(std::max<std::int64_t>(n_local * n_global, 1));
  const double global_terms = static_cast<double>((n_global - 1) * n_global);
  const auto zero = torch::zeros({}, global_out.options());
  terms.dino_local = zero, terms.dino_global = zero, terms.koleo = zero, terms.ibot = zero;
  if (n_local > 0)  // every local crop against both teacher crops
    terms.dino_local = config_.dino_loss_weight * dino_cross_entropy(local_out, terms.dino_targets[0] + terms.dino_targets[1], config_.student_temp) /
                       (global_terms + local_terms);
  if (config_.dino_loss_weight > 0) {
    terms.dino_global = config_.dino_loss_weight * dino_cross_entropy(global_out, terms.dino_targets.flatten(0, 1), config_.student_temp) * 2.0 /
                        (global_terms + local_terms);
    if (do_koleo) {
      // Not between the two crops of one image: per global crop.
      const auto crops = g.cls.chunk(n_global);
      terms.koleo = config_.koleo_loss_weight * (koleo_loss(crops[0], config_.koleo_eps, config_.koleo_distance_eps) + koleo_loss(crops[1], config_.koleo_eps, config_.koleo_distance_eps));
    }
  }
  if (do_ibot)
    terms.ibot = config_.ibot_loss_weight * ibot_masked_loss(masked_out, terms.ibot_targets, masks.weights.to(masked_out.device()), global.size(0), config_.student_temp) *
                 2.0 * (1.0 / static_cast<double>(n_global));
  terms.total = terms.dino_local + terms.dino_global + terms.koleo + terms.ibot;
  (loss_scale == 1.0 ? terms.total : terms.total * loss_scale).backward();
  return terms;
}

void SslModel::update_teacher(double momentum) {
  torch::NoGradGuard no_grad;
  auto source = student_.named_parameters();
  auto target = teacher_.named_parameters();
  for (std::size_t i = 0; i < source.size(); ++i) target[i].second.mul_(momentum).add_(source[i].second, 1.0 - momentum);
}

}  // namespace histoflow::finetune
