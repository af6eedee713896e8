#include <exception>
#include <string>

#include "fuzz_input_file.hpp"
#include "fuzz_targets.hpp"
#include "histoflow/csv.hpp"
#include "histoflow/slides/manifest.hpp"

namespace histoflow::fuzz {

// The first byte picks the reading options (delimiter, id column, files required or not), the rest is the file.
int fuzz_manifest(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t choice = data[0];
  slides::ManifestOptions options;
  options.delimiter = (choice & 1) ? '\t' : ',';
  options.require_slide_files = (choice & 2) != 0;
  if (choice & 4) options.id_column = "id";
  if (choice & 8) options.cohort_column = "cohort";
  if (choice & 16) options.mpp_column = "mpp";
  if (choice & 32) options.patient_column.clear();
  if (choice & 64) options.label_columns = {"label", "grade"};
  options.skip_missing = (choice & 128) != 0;
  const auto file = write_input_file(data + 1, size - 1, "manifest.csv");
  try {
    const auto manifest = slides::load_manifest(file, options);
    for (const auto& slide : manifest.slides) (void)slides::slide_attributes(slide);
  } catch (const std::exception&) {
  }
  try {
    (void)parse_csv(std::string(reinterpret_cast<const char*>(data + 1), size - 1), options.delimiter, "fuzz.csv");
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace histoflow::fuzz
