#include "grid_cache.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "histoflow/sealed_file.hpp"

namespace histoflow::slides {
namespace {
constexpr const char* kFormat = "tile-grid-json";
}

void write_grid_cache(const std::filesystem::path& file, const CachedGrid& grid, const std::string& identity) {
  nlohmann::json attributes = nlohmann::json::array();  // [name, type, value]: JSON alone loses int vs float
  for (const auto& [name, value] : grid.attributes) {
    if (const auto* i = std::get_if<std::int64_t>(&value)) attributes.push_back({name, "int", *i});
    else if (const auto* d = std::get_if<double>(&value)) attributes.push_back({name, "float", *d});
    else if (const auto* b = std::get_if<bool>(&value)) attributes.push_back({name, "bool", *b});
    else attributes.push_back({name, "string", std::get<std::string>(value)});
  }
  const std::string body = nlohmann::json{{"attributes", attributes}, {"coords", grid.coords}}.dump();
  std::filesystem::create_directories(file.parent_path());
  const auto temp = sealed_temp_path(file);
  {
    std::ofstream out(temp, std::ios::binary);
    out << std::string(kSealedHeaderBytes, '\0') << body;
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw std::runtime_error("cannot write '" + temp.string() + "' (disk full or read-only?)");
    }
  }
  seal_and_commit(temp, file, kFormat, identity);
}

std::optional<CachedGrid> read_grid_cache(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) return std::nullopt;
  if (const std::string problem = verify_sealed_file(file); !problem.empty())
    throw std::runtime_error("cached grid '" + file.string() + "': " + problem);
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(kSealedHeaderBytes));
  std::stringstream body;
  body << in.rdbuf();
  try {
    const auto json = nlohmann::json::parse(body.str());
    CachedGrid grid;
    grid.coords = json.at("coords").get<std::vector<std::int64_t>>();
    for (const auto& entry : json.at("attributes")) {
      const auto name = entry.at(0).get<std::string>(), type = entry.at(1).get<std::string>();
      if (type == "int") grid.attributes[name] = entry.at(2).get<std::int64_t>();
      else if (type == "float") grid.attributes[name] = entry.at(2).get<double>();
      else if (type == "bool") grid.attributes[name] = entry.at(2).get<bool>();
      else grid.attributes[name] = entry.at(2).get<std::string>();
    }
    if (grid.coords.size() % 2) throw std::runtime_error("odd number of coordinates");
    return grid;
  } catch (const std::exception& e) {
    throw std::runtime_error("cached grid '" + file.string() + "': " + e.what());
  }
}

}  // namespace histoflow::slides
