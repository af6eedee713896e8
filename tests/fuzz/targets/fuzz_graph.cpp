#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_targets.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"

namespace histoflow::fuzz {
namespace {

// The stages of the plugins this build has (the fuzz build has those without LibTorch: core, example, slides,
// features, comparison, augment); HISTOFLOW_FUZZ_PLUGIN_DIR points elsewhere.
PluginLoader& plugins() {
  static PluginLoader loader = [] {
    PluginLoader l;
    const char* dir = std::getenv("HISTOFLOW_FUZZ_PLUGIN_DIR");
    l.load_directory(dir ? dir : HISTOFLOW_FUZZ_DEFAULT_PLUGIN_DIR);
    if (l.plugins().empty()) {
      std::fprintf(stderr, "fuzz_graph: no plugin loaded from %s\n", dir ? dir : HISTOFLOW_FUZZ_DEFAULT_PLUGIN_DIR);
      std::abort();
    }
    return l;
  }();
  return loader;
}

std::string problems(const GraphLoad& load) {
  std::string text;
  for (const auto& d : load.diagnostics) text += d.format() + "\n";
  return text;
}

}  // namespace

// Any text: diagnostics are the expected outcome. A valid graph must also survive what flowrun does with it next
// (the resolved and expanded forms, the drawing), and its expanded form must validate again (flowrun graph --expand
// promises that), so a round-trip failure is a finding too.
int fuzz_graph(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A graph's [plugins] table loads the code it names (a graph is trusted to that extent, like a Makefile): the
  // fuzzer must not make this process dlopen whatever library a path like "/lib" reaches. TOML can spell the
  // key only literally or with \u escapes in a quoted key.
  if (text.find("plugins") != std::string::npos || text.find("\\u") != std::string::npos ||
      text.find("\\U") != std::string::npos)
    return 0;
  const std::filesystem::path file = "/histoflow-fuzz/graph.toml";
  GraphLoad load = load_graph_text(text, file, {}, plugins());
  if (!load.ok()) return 0;
  (void)resolved_graph_toml(load.spec);
  (void)graph_to_dot(load.spec);
  const std::string expanded = expanded_graph_toml(load.spec);
  const GraphLoad again = load_graph_text(expanded, file, {}, plugins());
  if (!again.ok()) {
    std::fprintf(stderr, "fuzz_graph: the expanded graph does not validate:\n%s\n--- expanded:\n%s\n", problems(again).c_str(),
                 expanded.c_str());
    std::abort();
  }
  return 0;
}

}  // namespace histoflow::fuzz
