#include "histoflow/evaluation_common/evaluation_kind.hpp"

#include <stdexcept>

namespace histoflow::evaluation_common {
namespace {

// Per-metric attribute families, "<family>:<metric>".
constexpr const char* kMean = "mean";
constexpr const char* kSd = "sd";
constexpr const char* kCiLow = "ci_low";
constexpr const char* kCiHigh = "ci_high";

}  // namespace

PacketKind evaluation_kind() {
  PacketKind kind;
  kind.name = kEvaluationKind;
  kind.summary = "one result of one method in one setting for one encoder";
  kind.doc =
      "Emitted by the evaluation stages (mil_cv per setting: in-domain, external, external (ensemble);\n"
      "knn_eval and linear_probe per method on the test set) and read by comparison_table, which puts every\n"
      "encoder in one table whatever metrics each method reports. provenance.item_id is the producing stage.";
  kind.attributes = {
      required_attribute("encoder", AttributeType::String, "the encoder evaluated (a row of the comparison)"),
      required_attribute("method", AttributeType::String, "the method: an aggregator, knn-20-weighted, linear_probe, ..."),
      required_attribute("setting", AttributeType::String, "in-domain, external, external (ensemble), test, ..."),
      required_attribute("stage", AttributeType::String, "the stage that produced it"),
      optional_attribute("output_dir", AttributeType::String, "the folder of that stage's reports"),
      optional_attribute(std::string(kMean) + ":", AttributeType::Float, "the metric's value (mean over folds where there are folds); at least one"),
      optional_attribute(std::string(kSd) + ":", AttributeType::Float, "sample standard deviation over folds"),
      optional_attribute(std::string(kCiLow) + ":", AttributeType::Float, "lower end of the bootstrap 95% interval"),
      optional_attribute(std::string(kCiHigh) + ":", AttributeType::Float, "upper end of the bootstrap 95% interval"),
      optional_attribute("train_rows", AttributeType::Int, "training rows (patch-level methods)"),
      optional_attribute("test_rows", AttributeType::Int, "test rows (patch-level methods)"),
  };
  return kind;
}

PacketPtr evaluation_packet(const EvaluationRecord& record, const std::filesystem::path& output_dir,
                            const std::map<std::string, std::int64_t>& counts) {
  Packet p;
  p.kind = kEvaluationKind;
  p.provenance.item_id = record.source;
  p.attributes["encoder"] = record.row;
  p.attributes["method"] = record.method;
  p.attributes["setting"] = record.setting;
  p.attributes["stage"] = record.source;
  p.attributes["output_dir"] = output_dir.string();
  const auto put = [&](const char* family, const std::map<std::string, double>& values) {
    for (const auto& [metric, value] : values) p.attributes[std::string(family) + ":" + metric] = value;
  };
  put(kMean, record.mean);
  put(kSd, record.sd);
  put(kCiLow, record.ci_low);
  put(kCiHigh, record.ci_high);
  for (const auto& [name, value] : counts) p.attributes[name] = value;
  return make_packet(std::move(p));
}

EvaluationRecord evaluation_record_of(const Packet& packet) {
  EvaluationRecord r;
  r.row = packet.require<std::string>("encoder");
  r.method = packet.require<std::string>("method");
  r.setting = packet.require<std::string>("setting");
  const std::string* source = packet.attribute<std::string>("stage");
  r.source = source ? *source : packet.provenance.item_id;
  for (const auto& [name, value] : packet.attributes) {
    const double* number = std::get_if<double>(&value);
    const auto colon = name.find(':');
    if (!number || colon == std::string::npos) continue;
    const std::string family = name.substr(0, colon), metric = name.substr(colon + 1);
    if (family == kMean) r.mean[metric] = *number;
    else if (family == kSd) r.sd[metric] = *number;
    else if (family == kCiLow) r.ci_low[metric] = *number;
    else if (family == kCiHigh) r.ci_high[metric] = *number;
  }
  if (r.mean.empty())
    throw std::invalid_argument("evaluation packet for encoder '" + r.row + "', method '" + r.method +
                                "' has no mean:<metric> attribute");
  return r;
}

}  // namespace histoflow::evaluation_common
