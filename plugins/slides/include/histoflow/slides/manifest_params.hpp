#pragma once
// The manifest parameters of the stages that read a cohort manifest (slide_source, slide_tile_sampler).
#include <string>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/params.hpp"
#include "histoflow/slides/manifest.hpp"

namespace histoflow::slides {

// manifest, slide_column, id_column, patient_column, label_columns (default `labels`), cohort_column,
// mpp_column, delimiter, on_missing.
std::vector<ParamSpec> manifest_params(const std::vector<std::string>& labels);
ManifestOptions manifest_options(const Params& params);

}  // namespace histoflow::slides
