// How a backbone appears in the framework's catalogue: what `flowrun backbones` tabulates and `flowrun
// describe backbone NAME` prints, as text, so that the framework needs no LibTorch to show it.
#include <sstream>

#include "histoflow/registry.hpp"
#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {
namespace {

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

std::string triple(const std::array<double, 3>& values) {
  std::ostringstream text;
  text << values[0] << ", " << values[1] << ", " << values[2];
  return text.str();
}

}  // namespace

CatalogueEntry catalogue_entry(const BackboneSpec& spec) {
  const bool declared = spec.family == "torchscript";  // the model comes from the weights file
  CatalogueEntry entry;
  entry.category = "backbone";
  entry.name = spec.name;
  entry.summary = spec.description.substr(0, spec.description.find('\n'));
  entry.details = spec.description;
  entry.fields = {
      {"family", spec.family},
      {"width", declared ? "declared (output_size)" : std::to_string(spec.dim)},
      {"input size", std::to_string(spec.input_size) + " px"},
      {"mean", triple(spec.mean)},
      {"std", triple(spec.std)},
      {"outputs", joined(spec.outputs, ", ")},
      {"default output", spec.outputs.empty() ? "" : spec.outputs.front()},  // what output = "auto" picks
      {"channels last", spec.channels_last ? "yes" : "no"},
      {"weights accepted",
       declared ? "a TorchScript archive (.pt, from torch.jit.save)"
                : "safetensors, or a torch.save .pth/.pt, with the module's key names; nested state dicts (model, "
                  "state_dict, teacher, module) are unwrapped and prefixes (module., backbone., teacher.backbone., "
                  "...) stripped; convert_weights --backbone " + spec.name + " checks and converts one"},
      {"weights source", spec.weights_source},
  };
  return entry;
}

}  // namespace histoflow::torch_encoders
