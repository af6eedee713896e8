// Writes each slide's tile grid: grids/<slide_id>.csv (x, y in level-0 pixels) and grids/<slide_id>.json
// (the tiling attributes). Other tools (and the tiling benchmark) read the same tiles from these files.
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>

#include "histoflow/atomic_file.hpp"
#include "histoflow/stage.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

class GridWriter final : public Stage {
 public:
  explicit GridWriter(const StageContext& context) : folder_(context.experiment.output_dir / context.params.get_string("folder")) {}

  void process(const PacketPtr& grid, std::size_t, Emitter&) override {
    const std::string& id = grid->provenance.item_id;
    AtomicFile csv(folder_ / (id + ".csv"));
    csv.stream() << "x,y\n";
    const auto* xy = grid->tensor.data<std::int64_t>();
    for (std::int64_t i = 0; i < grid->tensor.shape()[0]; ++i) csv.stream() << xy[2 * i] << ',' << xy[2 * i + 1] << '\n';
    csv.commit();
    nlohmann::json meta;
    for (const auto& attribute : grid->attributes)
      std::visit([&](const auto& v) { meta[attribute.first] = v; }, attribute.second);
    write_file_atomically(folder_ / (id + ".json"), meta.dump(2) + "\n");
    ++written_;
  }

  std::vector<StageResult> results() const override {
    const std::int64_t n = written_.load();
    if (n == 0) return {};
    return {{"tile grids (" + std::to_string(n) + (n == 1 ? " slide)" : " slides)"), std::filesystem::absolute(folder_)}};
  }

 private:
  std::filesystem::path folder_;
  std::atomic<std::int64_t> written_{0};  // process() runs concurrently
};

}  // namespace

void register_grid_writer(Registry& registry) {
  StageContract c;
  c.type = "grid_writer";
  c.summary = "Writes each slide's tile coordinates (CSV) and tiling attributes (JSON) to a folder";
  c.inputs = {{"grids", kGridKind, "tile grids from tissue_tiler's grid output"}};
  c.params = {param_string("folder", "grids", "Folder, relative to the experiment output folder")};
  c.concurrency = Concurrency::Unlimited;
  c.example = "[stage.grids]\nuse = \"grid_writer\"\ninput = \"tiles.grid\"\n";
  register_stage<GridWriter>(registry, std::move(c));
}

}  // namespace histoflow::slides
