// What a run folder holds, read tolerantly: a run that failed or was killed still gets a report, and every file
// it lacks (or cannot parse) becomes a line under "What is missing".
#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <toml++/toml.h>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {
namespace {

std::vector<std::string> stage_names(const toml::node* node) {
  std::vector<std::string> names;
  const auto add = [&](std::string name) {
    if (const auto dot = name.find('.'); dot != std::string::npos) name.resize(dot);  // "tiles.grid": stage tiles
    names.push_back(std::move(name));
  };
  if (!node) return names;
  if (const auto* text = node->as_string()) add(text->get());
  if (const auto* array = node->as_array())
    for (const auto& element : *array)
      if (const auto* text = element.as_string()) add(text->get());
  return names;
}

void read_graph(RunFolder& run) {
  const auto file = run.dir / "resolved_graph.toml";
  if (!std::filesystem::exists(file)) {
    run.missing.push_back("resolved_graph.toml: not written (the run stopped before its graph was validated); no graph drawing");
    return;
  }
  try {
    const toml::table graph = toml::parse_file(file.string());
    if (const auto* stages = graph["stage"].as_table())
      for (const auto& [id, node] : *stages) {
        const auto* table = node.as_table();
        if (!table) continue;
        GraphStage stage;
        stage.id = std::string(id.str());
        stage.use = (*table)["use"].value_or(std::string());
        stage.inputs = stage_names(table->get("inputs"));
        for (auto& name : stage_names(table->get("input"))) stage.inputs.push_back(std::move(name));
        stage.after = stage_names(table->get("after"));
        stage.parameters = nlohmann::json::object();
        for (const auto& [key, value] : *table)
          if (const auto* text = value.as_string()) stage.parameters[std::string(key.str())] = text->get();
        run.stages.push_back(std::move(stage));
      }
  } catch (const toml::parse_error& e) {
    run.missing.push_back("resolved_graph.toml: cannot be parsed (" + std::string(e.description()) + "); no graph drawing");
  }
}

}  // namespace

std::string RunFolder::relative(const std::filesystem::path& file) const {
  const auto text = file.lexically_relative(dir).generic_string();
  return text.empty() || text.rfind("..", 0) == 0 ? file.generic_string() : text;
}

std::optional<std::string> RunFolder::bytes(const std::filesystem::path& file, std::string_view what) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    missing.push_back(relative(file) + (std::filesystem::exists(file) ? ": cannot be read" : ": not written") + ", so no " +
                      std::string(what));
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::optional<nlohmann::json> RunFolder::json(const std::filesystem::path& file, std::string_view what) {
  const auto text = bytes(file, what);
  if (!text) return std::nullopt;
  try {
    return nlohmann::json::parse(*text);
  } catch (const std::exception& e) {
    missing.push_back(relative(file) + ": not valid JSON (" + e.what() + "), so no " + std::string(what));
    return std::nullopt;
  }
}

std::optional<CsvTable> RunFolder::csv(const std::filesystem::path& file, std::string_view what) {
  const auto text = bytes(file, what);
  if (!text) return std::nullopt;
  try {
    return parse_csv(*text, ',', relative(file));
  } catch (const std::exception& e) {
    missing.push_back(std::string(e.what()) + ", so no " + std::string(what));
    return std::nullopt;
  }
}

std::vector<const GraphStage*> RunFolder::stages_using(std::string_view use) const {
  std::vector<const GraphStage*> found;
  for (const auto& s : stages)
    if (s.use == use) found.push_back(&s);
  return found;
}

RunFolder read_run_folder(const std::filesystem::path& dir) {
  RunFolder run;
  run.dir = dir;
  if (std::filesystem::exists(dir / "run_summary.json")) {
    run.summary = run.json(dir / "run_summary.json", "run summary");
    if (run.summary && !run.summary->is_object()) {
      run.missing.push_back("run_summary.json: not a JSON object, so no run summary");
      run.summary.reset();
    }
    // Every run writes resolved_graph.toml when it starts and run_summary.json when it ends: a summary older
    // than the graph is an earlier run's, and the latest run did not finish.
    std::error_code error;
    const auto summary_time = std::filesystem::last_write_time(dir / "run_summary.json", error);
    const auto graph_time = std::filesystem::last_write_time(dir / "resolved_graph.toml", error);
    if (run.summary && !error && graph_time > summary_time) {
      run.summary_is_stale = true;
      run.missing.push_back("run_summary.json: older than resolved_graph.toml: the latest run started after it and did not finish, "
                            "so the summary shown is an earlier run's");
    }
  } else {
    run.missing.push_back("run_summary.json: not written: the run did not finish (killed, or still running), so the "
                          "summary, errors and resumed items below are unknown");
  }
  if (std::filesystem::exists(dir / "run_started.json")) run.started = run.json(dir / "run_started.json", "start record");
  read_graph(run);
  return run;
}

double parse_number(const std::string& text) {
  if (text.empty()) return std::numeric_limits<double>::quiet_NaN();
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    return used == text.size() ? value : std::numeric_limits<double>::quiet_NaN();
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

std::string CsvColumns::operator()(const CsvRecord& record, const std::string& name) const {
  const int c = table.column(name);
  return c >= 0 && static_cast<std::size_t>(c) < record.fields.size() ? record.fields[static_cast<std::size_t>(c)] : "";
}

bool has_columns(const CsvTable& table, std::initializer_list<const char*> names) {
  return std::all_of(names.begin(), names.end(), [&](const char* n) { return table.column(n) >= 0; });
}

const nlohmann::json& json_member(const nlohmann::json& object, const std::string& key) {
  static const nlohmann::json null;
  if (!object.is_object()) return null;
  const auto it = object.find(key);
  return it == object.end() ? null : *it;
}

std::string json_number(const nlohmann::json& object, const std::string& key, int decimals) {
  const auto& value = json_member(object, key);
  return value.is_number() ? svg::fixed(value.get<double>(), decimals) : "–";
}

std::string json_text(const nlohmann::json& object, const std::string& key, const std::string& fallback) {
  const auto& value = json_member(object, key);
  return value.is_string() ? value.get<std::string>() : fallback;
}

std::string html_escape(std::string_view text) { return svg::escape(text); }

std::string figure(const std::string& svg, const std::string& caption) {
  return "<figure>" + svg + (caption.empty() ? "" : "<figcaption>" + html_escape(caption) + "</figcaption>") + "</figure>\n";
}

std::string png_image(const std::string& png, const std::string& alt, int max_width) {
  return "<img alt=\"" + html_escape(alt) + "\"" + (max_width > 0 ? " style=\"max-width:" + std::to_string(max_width) + "px\"" : "") +
         " src=\"data:image/png;base64," + svg::base64(png) + "\">";
}

}  // namespace histoflow::report
