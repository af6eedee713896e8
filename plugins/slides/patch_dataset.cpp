#include "histoflow/slides/patch_dataset.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "histoflow/csv.hpp"

namespace histoflow::slides {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

PatchDataset list_patch_dataset(const PatchDatasetSource& source) {
  if (source.root.empty() == source.csv.empty()) throw std::invalid_argument("give exactly one of root (class folders) or csv");
  std::vector<std::pair<std::filesystem::path, std::string>> found;  // (file, class name)
  const std::string where = (source.csv.empty() ? source.root : source.csv).string();
  PatchDataset dataset;
  if (!source.csv.empty()) {
    const CsvTable table = read_csv(source.csv, ',');
    const int path_col = table.column(source.path_column);
    const int label_col = table.column(source.label_column);
    if (path_col < 0 || label_col < 0)
      throw std::runtime_error(source.csv.string() + ": needs columns '" + source.path_column + "' and '" + source.label_column + "'");
    for (const auto& record : table.records) {
      if (record.fields.size() != table.header.size())
        throw std::runtime_error(source.csv.string() + ":" + std::to_string(record.line) + ": wrong number of fields");
      std::filesystem::path file = record.fields[static_cast<std::size_t>(path_col)];
      if (file.is_relative()) file = source.csv.parent_path() / file;
      found.emplace_back(file.lexically_normal(), record.fields[static_cast<std::size_t>(label_col)]);
    }
    dataset.base = source.csv.parent_path();
  } else {
    std::error_code ec;
    if (!std::filesystem::is_directory(source.root, ec))
      throw std::runtime_error("patch folder '" + source.root.string() + "' does not exist");
    std::set<std::string> extensions;
    for (const auto& e : source.extensions) extensions.insert(lower(e));
    for (const auto& class_dir : std::filesystem::directory_iterator(source.root)) {
      if (!class_dir.is_directory()) continue;
      for (const auto& entry : std::filesystem::directory_iterator(class_dir.path()))
        if (entry.is_regular_file() && extensions.count(lower(entry.path().extension().string())))
          found.emplace_back(entry.path(), class_dir.path().filename().string());
    }
    dataset.base = source.root;
  }
  if (found.empty()) {
    std::string extensions;
    for (const auto& e : source.extensions) extensions += (extensions.empty() ? "" : " ") + e;
    throw std::runtime_error("no images found in '" + where + "'" +
                             (source.csv.empty() ? " (looked for " + extensions + " files in its class sub-folders)" : ""));
  }
  std::sort(found.begin(), found.end());
  std::set<std::string> names;
  for (const auto& [file, name] : found) names.insert(name);
  dataset.classes = source.classes;
  if (dataset.classes.empty()) dataset.classes.assign(names.begin(), names.end());
  for (const auto& name : names)
    if (std::find(dataset.classes.begin(), dataset.classes.end(), name) == dataset.classes.end())
      throw std::runtime_error("class '" + name + "' in '" + where + "' is not in the classes list");
  for (auto& [file, name] : found) {
    dataset.files.push_back(std::move(file));
    dataset.labels.push_back(std::find(dataset.classes.begin(), dataset.classes.end(), name) - dataset.classes.begin());
  }
  return dataset;
}

}  // namespace histoflow::slides
