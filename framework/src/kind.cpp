#include "histoflow/kind.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string_view>

namespace histoflow {

const char* attribute_type_name(AttributeType type) {
  switch (type) {
    case AttributeType::Int: return "integer";
    case AttributeType::Float: return "float";
    case AttributeType::Bool: return "boolean";
    case AttributeType::String: return "string";
  }
  return "?";
}

AttributeSpec required_attribute(std::string name, AttributeType type, std::string doc) {
  return {std::move(name), type, std::move(doc), true};
}

AttributeSpec optional_attribute(std::string name, AttributeType type, std::string doc) {
  return {std::move(name), type, std::move(doc), false};
}

const AttributeSpec* PacketKind::find_attribute(const std::string& attribute) const {
  for (const auto& spec : attributes)
    if (spec.is_family() ? attribute.size() > spec.name.size() && attribute.rfind(spec.name, 0) == 0
                         : attribute == spec.name)
      return &spec;
  return nullptr;
}

namespace {

bool holds(const Attribute& value, AttributeType type) {
  switch (type) {
    case AttributeType::Int: return std::holds_alternative<std::int64_t>(value);
    case AttributeType::Float: return std::holds_alternative<double>(value);
    case AttributeType::Bool: return std::holds_alternative<bool>(value);
    case AttributeType::String: return std::holds_alternative<std::string>(value);
  }
  return false;
}

const char* held_type_name(const Attribute& value) {
  static constexpr AttributeType order[] = {AttributeType::Int, AttributeType::Float, AttributeType::Bool, AttributeType::String};
  return attribute_type_name(order[value.index()]);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : std::to_string(shape[i]));
  return text + "]";
}

void check_tensor(const TensorSpec& spec, const Packet& packet, std::vector<std::string>& problems) {
  const Tensor& tensor = packet.tensor;
  if (!tensor.defined()) {
    problems.push_back("carries no tensor; the kind needs " + spec.doc);
    return;
  }
  if (!spec.dtypes.empty() && std::find(spec.dtypes.begin(), spec.dtypes.end(), tensor.dtype()) == spec.dtypes.end()) {
    std::string allowed;
    for (const auto dtype : spec.dtypes) allowed += std::string(allowed.empty() ? "" : " or ") + dtype_name(dtype);
    problems.push_back("tensor has dtype " + std::string(dtype_name(tensor.dtype())) + ", the kind allows " + allowed);
  }
  if (spec.rank >= 0 && tensor.dim() != spec.rank) {
    problems.push_back("tensor has rank " + std::to_string(tensor.dim()) + " (" + shape_text(tensor.shape()) +
                       "), the kind needs rank " + std::to_string(spec.rank));
    return;
  }
  for (std::size_t d = 0; d < spec.shape.size() && d < tensor.shape().size(); ++d)
    if (spec.shape[d] >= 0 && tensor.shape()[d] != spec.shape[d])
      problems.push_back("tensor has shape " + shape_text(tensor.shape()) + ", the kind needs " + shape_text(spec.shape));
  if (spec.rows_per_row_provenance && tensor.dim() >= 1 && !packet.rows.empty() &&
      static_cast<std::int64_t>(packet.rows.size()) != tensor.shape()[0])
    problems.push_back("tensor has " + std::to_string(tensor.shape()[0]) + " rows but the packet names " +
                       std::to_string(packet.rows.size()) + " row provenances");
}

}  // namespace

std::vector<std::string> packet_kind_problems(const PacketKind& kind, const Packet& packet) {
  std::vector<std::string> problems;
  if (packet.kind != kind.name) problems.push_back("is of kind '" + packet.kind + "', not '" + kind.name + "'");
  if (kind.tensor) check_tensor(*kind.tensor, packet, problems);
  else if (packet.tensor.defined() && packet.tensor.numel() > 0)
    problems.push_back("carries a tensor (" + packet.tensor.describe() + "), which the kind does not declare");
  for (const auto& spec : kind.attributes)
    if (spec.required && !spec.is_family() && !packet.attributes.count(spec.name))
      problems.push_back("lacks the required attribute '" + spec.name + "' (" + attribute_type_name(spec.type) + ": " +
                         spec.doc + ")");
  for (const auto& [name, value] : packet.attributes)
    if (const AttributeSpec* spec = kind.find_attribute(name); spec && !holds(value, spec->type))
      problems.push_back("attribute '" + name + "' is of type " + held_type_name(value) + ", the kind declares " +
                         attribute_type_name(spec->type));
  if (kind.tile_provenance && !packet.provenance.tile)
    problems.push_back("has no tile provenance (provenance.tile), which the kind promises");
  return problems;
}

bool packet_checks_enabled() {
  if (const char* value = std::getenv("HISTOFLOW_CHECK_PACKETS")) return std::string_view(value) != "0";
#ifdef NDEBUG
  return false;
#else
  return true;
#endif
}

std::string describe_kind(const PacketKind& kind) {
  std::ostringstream out;
  out << "packet kind " << kind.name << " — " << kind.summary << "\n";
  if (!kind.doc.empty()) out << "\n" << kind.doc << "\n";
  out << "\ntensor:\n";
  if (!kind.tensor) {
    out << "  (none)\n";
  } else {
    const TensorSpec& t = *kind.tensor;
    out << "  " << t.doc << "\n";
    std::string dtypes;
    for (const auto dtype : t.dtypes) dtypes += std::string(dtypes.empty() ? "" : ", ") + dtype_name(dtype);
    out << "  dtype: " << (dtypes.empty() ? "any" : dtypes) << "; rank: " << (t.rank < 0 ? std::string("any") : std::to_string(t.rank));
    if (!t.shape.empty()) out << "; shape: " << shape_text(t.shape);
    out << "\n";
    if (t.rows_per_row_provenance) out << "  one row provenance per row of dimension 0 (Packet::rows)\n";
  }
  if (kind.tile_provenance) out << "\nprovenance: slide id and the tile's level-0 position (provenance.tile)\n";
  out << "\nattributes:\n";
  if (kind.attributes.empty()) out << "  (none declared)\n";
  for (const auto& a : kind.attributes)
    out << "  " << (a.is_family() ? a.name + "<name>" : a.name) << " (" << attribute_type_name(a.type)
        << (a.required ? ", required" : ", optional") << ")\n      " << a.doc << "\n";
  out << "\ndeclared by: " << kind.owner << "\n";
  return out.str();
}

}  // namespace histoflow
