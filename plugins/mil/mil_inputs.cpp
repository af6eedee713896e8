#include "mil_inputs.hpp"

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

#include "histoflow/features/feature_layouts.hpp"

namespace histoflow::mil {
namespace {

std::string optional_string(const Packet& packet, const std::string& name) {
  const std::string* value = packet.attribute<std::string>(name);
  return value ? *value : std::string();
}

bool is_integer(const std::string& text) {
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

SlideInput read_slide_input(const Packet& packet, const std::string& label_column) {
  SlideInput in;
  in.slide_id = packet.require<std::string>("slide_id");
  in.feature_path = packet.require<std::string>("path");
  in.patient = optional_string(packet, "patient");
  if (in.patient.empty()) in.patient = in.slide_id;  // no patient column: one patient per slide
  in.cohort = optional_string(packet, "cohort");
  in.slide_path = optional_string(packet, "slide_path");
  in.label = optional_string(packet, "label:" + label_column);
  in.encoder = optional_string(packet, "encoder");
  in.weights_sha256 = optional_string(packet, "weights_sha256");
  in.output = optional_string(packet, "output");
  features::SlideFeatures file;
  features::FeatureFileRef ref{in.feature_path, "histoflow", {}};  // a store's file unless feature_reader says otherwise
  if (const auto* format = packet.attribute<std::string>("format")) ref.format = *format;
  if (const auto* coords = packet.attribute<std::string>("coords_path")) ref.coords_file = *coords;
  try {
    file = features::read_slide_features(ref);
  } catch (const std::exception& e) {
    throw std::invalid_argument("slide '" + in.slide_id + "': feature file '" + in.feature_path + "' cannot be used: " + e.what());
  }
  in.rows = file.features.rows;
  in.dim = file.features.dim;
  in.features = std::move(file.features.values);
  in.coords = std::move(file.coords);
  if (static_cast<std::int64_t>(in.coords.size()) != 2 * in.rows) in.coords.assign(static_cast<std::size_t>(2 * in.rows), 0);
  return in;
}

std::vector<std::string> class_names_for(const std::vector<std::string>& labels, const std::vector<std::string>& explicit_order) {
  const std::set<std::string> distinct(labels.begin(), labels.end());
  if (!explicit_order.empty()) {
    for (const auto& label : distinct)
      if (std::find(explicit_order.begin(), explicit_order.end(), label) == explicit_order.end())
        throw std::invalid_argument("label '" + label + "' is not one of the classes given in `classes`");
    return explicit_order;
  }
  std::vector<std::string> names(distinct.begin(), distinct.end());
  if (std::all_of(names.begin(), names.end(), is_integer))
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  return names;
}

}  // namespace histoflow::mil
