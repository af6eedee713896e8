#include "histoflow/plugin_api.hpp"
#include "slide_stages.hpp"

namespace {
void register_slides(histoflow::Registry& registry) {
  using namespace histoflow::slides;
  for (auto& kind : slide_kinds()) registry.add_kind(std::move(kind));
  register_slide_source(registry);
  register_tissue_tiler(registry);
  register_tile_reader(registry);
  register_patch_folder(registry);
  register_slide_tile_sampler(registry);
  register_grid_writer(registry);
  register_stain_normalize(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("slides", "Slides in: cohort manifests, OpenSlide reading, tissue tiling, tile reading, patch datasets, stain normalisation",
                 register_slides)
