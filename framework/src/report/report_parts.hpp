#pragma once
// The report's pieces: what a run folder holds (read tolerantly: a missing or damaged file becomes a note, not
// an error) and the sections made from it. Each section returns HTML; the page (report_page.cpp) joins them.
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "histoflow/csv.hpp"

namespace histoflow::report {

struct GraphStage {
  std::string id, use;
  std::vector<std::string> inputs;  // upstream stage ids (ports dropped)
  std::vector<std::string> after;   // stages this one waits for (phases)
  nlohmann::json parameters;        // the rest of its table, for file names such as comparison_table's csv
};

struct RunFolder {
  std::filesystem::path dir;
  std::optional<nlohmann::json> summary;  // run_summary.json
  bool summary_is_stale = false;          // older than resolved_graph.toml: a later run started and did not finish
  std::optional<nlohmann::json> started;  // run_started.json
  std::vector<GraphStage> stages;         // resolved_graph.toml
  std::vector<std::string> missing;       // what could not be shown, and why

  // File readers that note what is missing or damaged (relative to dir) instead of throwing.
  std::optional<nlohmann::json> json(const std::filesystem::path& file, std::string_view what);
  std::optional<CsvTable> csv(const std::filesystem::path& file, std::string_view what);
  std::optional<std::string> bytes(const std::filesystem::path& file, std::string_view what);
  std::string relative(const std::filesystem::path& file) const;
  std::vector<const GraphStage*> stages_using(std::string_view use) const;
};

RunFolder read_run_folder(const std::filesystem::path& dir);

// A number from a CSV field; NaN when empty or not wholly a number.
double parse_number(const std::string& text);
// A CSV record's field by column name ("" when the column or the field is absent).
struct CsvColumns {
  const CsvTable& table;
  std::string operator()(const CsvRecord& record, const std::string& name) const;
};
bool has_columns(const CsvTable& table, std::initializer_list<const char*> names);

// JSON read without throwing: a member (null when `object` is not an object or lacks it), a number as text
// ("–" when absent or not a number), a string ("" or `fallback` when absent or not a string).
const nlohmann::json& json_member(const nlohmann::json& object, const std::string& key);
std::string json_number(const nlohmann::json& object, const std::string& key, int decimals);
std::string json_text(const nlohmann::json& object, const std::string& key, const std::string& fallback = {});

std::string html_escape(std::string_view text);
// An SVG figure, with a caption in plain text (escaped here).
std::string figure(const std::string& svg, const std::string& caption = {});
std::string png_image(const std::string& png, const std::string& alt, int max_width = 0);

std::string draw_graph(const std::vector<GraphStage>& stages);

std::string summary_section(RunFolder& run);
std::string graph_section(RunFolder& run);
std::string comparison_section(RunFolder& run);
std::string slide_level_section(RunFolder& run);
std::string patch_level_section(RunFolder& run);
std::string finetune_section(RunFolder& run);
std::string timing_section(RunFolder& run);

}  // namespace histoflow::report
