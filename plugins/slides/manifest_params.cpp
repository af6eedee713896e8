#include "histoflow/slides/manifest_params.hpp"

#include <stdexcept>

namespace histoflow::slides {
namespace {

char delimiter_of(const std::string& text) {
  if (text == "tab" || text == "\\t" || text == "\t") return '\t';
  if (text.size() != 1) throw std::invalid_argument("delimiter must be one character or \"tab\", got '" + text + "'");
  return text[0];
}

}  // namespace

std::vector<ParamSpec> manifest_params(const std::vector<std::string>& labels) {
  // Only the mpp column changes what is computed from a slide; the slide itself is keyed by its fingerprint.
  return {not_affecting_output(param_required("manifest", ParamType::Path, "Cohort manifest CSV")),
          not_affecting_output(param_string("slide_column", "slide", "Column with the slide file path")),
          not_affecting_output(param_string("id_column", "", "Column with the slide id; empty: the file name without extension")),
          not_affecting_output(param_string("patient_column", "patient", "Column with the patient id; empty: one patient per slide")),
          not_affecting_output(param_string_list("label_columns", labels, "Label columns (each must be non-empty)")),
          not_affecting_output(param_string("cohort_column", "", "Optional column naming the cohort or split")),
          param_string("mpp_column", "", "Optional column with microns per pixel, overriding the slide's own"),
          not_affecting_output(param_string("delimiter", ",", "Field delimiter: one character, or \"tab\"")),
          not_affecting_output(param_string("on_missing", "error", "A slide file that does not exist: fail the run, or skip it (recorded)",
                                            {"error", "skip"}))};
}

ManifestOptions manifest_options(const Params& p) {
  ManifestOptions options;
  options.slide_column = p.get_string("slide_column");
  options.id_column = p.get_string("id_column");
  options.patient_column = p.get_string("patient_column");
  options.label_columns = p.get_list("label_columns");
  options.cohort_column = p.get_string("cohort_column");
  options.mpp_column = p.get_string("mpp_column");
  options.delimiter = delimiter_of(p.get_string("delimiter"));
  options.skip_missing = p.get_string("on_missing") == "skip";
  return options;
}

}  // namespace histoflow::slides
