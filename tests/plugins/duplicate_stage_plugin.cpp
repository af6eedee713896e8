// Registers a stage type that the core plugin already provides: loading must fail naming both files.
#include "histoflow/plugin_api.hpp"
#include "histoflow/registry.hpp"

namespace {
class Nothing final : public histoflow::Stage {
 public:
  explicit Nothing(const histoflow::StageContext&) {}
};
void register_duplicate(histoflow::Registry& registry) {
  histoflow::StageContract c;
  c.type = "csv_writer";
  c.summary = "a second csv_writer";
  c.inputs = {{"features", "features", ""}};
  histoflow::register_stage<Nothing>(registry, std::move(c));
}
}  // namespace

HISTOFLOW_PLUGIN("duplicate", "registers csv_writer a second time", register_duplicate)
