// flowrun backbones, flowrun describe backbone NAME: the torch encoder's backbones as plugins entered them in
// the framework's catalogue (category "backbone"). Only text is read here: flowrun links no LibTorch.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "../src/nearest_name.hpp"
#include "cli_args.hpp"
#include "commands.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::cli {
namespace {

constexpr const char* kCategory = "backbone";

std::string field_or(const CatalogueEntry& entry, const std::string& key, const std::string& fallback = "-") {
  const std::string* value = entry.field(key);
  return value && !value->empty() ? *value : fallback;
}

// Long values (the weights a backbone accepts) wrapped at spaces, continuation lines under the first.
std::string wrapped(const std::string& text, std::size_t indent, std::size_t width = 112) {
  if (indent + text.size() <= width || width <= indent + 20) return text;
  std::string out, line;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return out + line;
}

void print_row(const std::vector<std::string>& cells, const std::vector<std::size_t>& widths) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i)
    line += i + 1 < cells.size() ? cells[i] + std::string(widths[i] - cells[i].size() + 2, ' ') : cells[i];
  std::cout << line << '\n';
}

}  // namespace

int command_backbones(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun backbones\n\nLists the backbones torch_encoder accepts (`backbone = \"NAME\"`): built-in ones\n"
                 "and those plugins add, with family, feature width, input size, outputs and the plugin file that\n"
                 "registered each. `flowrun describe backbone NAME` shows one in full.\n";
    return 0;
  }
  parse_args(args, {});
  PluginLoader loader;
  const bool ok = load_plugins(loader);
  const auto entries = Registry::instance().entries(kCategory);
  if (entries.empty()) {
    std::cerr << "no backbones: no loaded plugin registers any (is the torch_encoders plugin built? see `flowrun plugins`)\n";
    return 2;
  }
  const std::vector<std::string> header{"name", "family", "width", "input size", "outputs", "plugin"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : entries)
    rows.push_back({e.name, field_or(e, "family"), field_or(e, "width"), field_or(e, "input size"), field_or(e, "outputs"),
                    e.plugin_file.empty() ? "-" : std::filesystem::path(e.plugin_file).filename().string()});
  std::vector<std::size_t> widths;
  for (const auto& title : header) widths.push_back(title.size());
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  print_row(header, widths);
  for (const auto& row : rows) print_row(row, widths);
  return ok ? 0 : 2;
}

int describe_backbone(const std::string& name) {
  PluginLoader loader;
  const bool ok = load_plugins(loader);
  const auto& registry = Registry::instance();
  const auto entry = registry.find_entry(kCategory, name);
  if (!entry) {
    std::vector<std::string> names;
    for (const auto& e : registry.entries(kCategory)) names.push_back(e.name);
    std::cerr << "error: unknown backbone '" << name << "'" << detail::did_you_mean(name, names)
              << "; `flowrun backbones` lists them\n";
    return 2;
  }
  std::cout << "backbone " << entry->name << "\n\n";
  std::string details = entry->details.empty() ? entry->summary : entry->details;
  for (std::size_t start = 0; start < details.size();) {
    const auto end = std::min(details.find('\n', start), details.size());
    std::cout << "  " << details.substr(start, end - start) << '\n';
    start = end + 1;
  }
  std::cout << '\n';
  std::size_t key_width = std::string("plugin").size();
  for (const auto& [key, value] : entry->fields) key_width = std::max(key_width, key.size());
  for (const auto& [key, value] : entry->fields)
    std::cout << "  " << key << std::string(key_width - key.size() + 2, ' ')
              << (value.empty() ? "-" : wrapped(value, key_width + 4)) << '\n';
  std::cout << "  plugin" << std::string(key_width - 6 + 2, ' ')
            << (entry->plugin_file.empty() ? "(registered outside a plugin load)" : entry->plugin_file) << "\n\n";
  const bool scripted = field_or(*entry, "family") == "torchscript";  // the model is the weights file
  std::cout << "example:\n[stage.encode]\nuse = \"torch_encoder\"\ninput = \"read\"\nbackbone = \"" << entry->name
            << "\"\nweights = \"models/" << entry->name << (scripted ? ".pt\"\n" : ".safetensors\"   # or synthetic_weights = true for a test\n");
  return ok ? 0 : 2;
}

}  // namespace histoflow::cli
