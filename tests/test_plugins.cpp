// Plugin loading: the handshake refuses mismatches before touching C++ types; non-plugins are skipped.
#include <catch2/catch.hpp>

#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/version.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {
const std::filesystem::path kTestPlugins = HISTOFLOW_TEST_PLUGIN_DIR;
}

TEST_CASE("the core plugin loads and registers its stages with their library", "[plugins]") {
  PluginLoader& loader = shared_loader();
  const auto& plugins = loader.plugins();
  const auto core = std::find_if(plugins.begin(), plugins.end(), [](const LoadedPlugin& p) { return p.name == "core"; });
  REQUIRE(core != plugins.end());
  CHECK(core->framework_version == kVersion);
  CHECK(core->torch_version.empty());
  CHECK(std::find(core->stage_types.begin(), core->stage_types.end(), "color_stats") != core->stage_types.end());
  const StageContract* contract = Registry::instance().find("color_stats");
  REQUIRE(contract);
  CHECK(contract->plugin_file == core->file.string());
  CHECK(contract->find_param("batch"));  // added by the framework for batched stages
}

TEST_CASE("a plugin with another ABI version is refused, naming both versions and the file", "[plugins]") {
  PluginLoader loader;
  loader.load_directory(kTestPlugins / "wrong-abi");
  REQUIRE(loader.errors().size() == 1);
  const std::string& error = loader.errors()[0];
  CHECK(error.find("libwrong_abi_plugin.so") != std::string::npos);
  CHECK(error.find("plugin ABI version 999") != std::string::npos);
  CHECK(error.find("plugin ABI version " + std::to_string(kPluginAbiVersion)) != std::string::npos);
  CHECK(loader.plugins().empty());
  // Loading it directly throws the same error (a fresh loader has not seen the file).
  PluginLoader fresh;
  CHECK_THROWS_WITH(fresh.load_file(kTestPlugins / "wrong-abi" / "libwrong_abi_plugin.so"), Catch::Contains("999"));
}

TEST_CASE("a plugin built against another framework version is refused", "[plugins]") {
  PluginLoader loader;
  CHECK_THROWS_WITH(loader.load_file(kTestPlugins / "wrong-version" / "libwrong_version_plugin.so"),
                    Catch::Contains("histoflow 7.3.0") && Catch::Contains(std::string("histoflow ") + kVersion));
}

TEST_CASE("a shared library that is not a plugin is skipped with one note", "[plugins]") {
  PluginLoader loader;
  loader.load_directory(kTestPlugins / "not-a-plugin");
  CHECK(loader.errors().empty());
  CHECK(loader.plugins().empty());
  REQUIRE(loader.notes().size() == 1);
  CHECK(loader.notes()[0].find("not a histoflow plugin") != std::string::npos);
}

TEST_CASE("registering a stage type twice fails, naming both plugin files", "[plugins]") {
  shared_loader();  // core is loaded
  PluginLoader loader;
  loader.load_directory(kTestPlugins / "duplicate-stage");
  REQUIRE(loader.errors().size() == 1);
  CHECK(loader.errors()[0].find("'csv_writer' is registered twice") != std::string::npos);
  CHECK(loader.errors()[0].find("libhf_core.so") != std::string::npos);
  CHECK(loader.errors()[0].find("libduplicate_stage_plugin.so") != std::string::npos);
}

TEST_CASE("a missing plugin folder is a note, not a crash", "[plugins]") {
  PluginLoader loader;
  loader.load_directory("/nonexistent/histoflow/plugins");
  CHECK(loader.errors().empty());
  REQUIRE(loader.notes().size() == 1);
}
