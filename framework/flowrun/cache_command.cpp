// flowrun cache ls | verify | gc FOLDER: inspect and tidy a folder of cached results.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/errors.hpp"

namespace histoflow::cli {
namespace {

constexpr const char* kUsage =
    "usage: flowrun cache ls|verify|gc FOLDER [--dry-run]\n\n"
    "FOLDER holds cached results: feature files (slide_store's and patch_store's root) or tile grids (tissue_tiler's cache).\n"
    "  ls      one line per entry: format, what it holds (slide or dataset, encoder), size and path\n"
    "  verify  checks every entry's SHA-256 against its header; exit status 1 when one fails\n"
    "  gc      removes temporaries left by killed writers (not those of running processes) and orphans:\n"
    "          files without a histoflow header or failing verification. --dry-run lists them only.\n";

std::string describe_identity(const std::string& identity) {
  try {
    const auto j = nlohmann::json::parse(identity);
    std::string text;
    for (const char* key : {"slide_id", "dataset", "encoder", "content"})
      if (j.contains(key) && j[key].is_string()) text += (text.empty() ? "" : " ") + std::string(key) + "=" + j[key].get<std::string>();
    return text;
  } catch (const std::exception&) {
    return "(unreadable identity)";
  }
}

}  // namespace

int command_cache(const std::vector<std::string>& args) {
  if (wants_help(args) || args.empty()) {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const auto parsed = parse_args(args, {{"--dry-run"}});
  if (parsed.positionals.size() != 2) throw UsageError("usage: flowrun cache ls|verify|gc FOLDER [--dry-run]");
  const std::string& action = parsed.positionals[0];
  const std::filesystem::path root = parsed.positionals[1];
  if (action == "ls") {
    const CacheScan scan = scan_cache(root);
    std::uintmax_t total = 0;
    for (const auto& e : scan.entries) {
      total += e.bytes;
      std::cout << std::left << std::setw(16) << (e.header ? e.header->format : "(not sealed)") << " "
                << std::setw(48) << (e.header ? describe_identity(e.header->identity) : "") << " " << std::right
                << std::setw(12) << e.bytes << "  " << std::filesystem::relative(e.file, root).string() << '\n';
    }
    for (const auto& t : scan.temporaries)
      std::cout << "temporary" << (t.writer_alive ? " (writer running)" : " (stale)") << "  "
                << std::filesystem::relative(t.file, root).string() << '\n';
    std::cout << scan.entries.size() << " entries, " << total << " bytes, " << scan.temporaries.size() << " temporaries\n";
    return 0;
  }
  if (action == "verify") {
    const CacheScan scan = scan_cache(root);
    std::size_t failed = 0;
    for (const auto& e : scan.entries) {
      const std::string problem = verify_sealed_file(e.file);
      if (problem.empty()) continue;
      ++failed;
      std::cout << "FAILED " << e.file.string() << ": " << problem << '\n';
    }
    std::cout << scan.entries.size() - failed << " of " << scan.entries.size() << " entries verified" << '\n';
    return failed ? 1 : 0;
  }
  if (action == "gc") {
    const bool dry_run = parsed.has("--dry-run");
    const CacheCleanup cleanup = clean_cache(root, dry_run);
    const char* verb = dry_run ? "would remove" : "removed";
    for (const auto& f : cleanup.removed_temporaries) std::cout << verb << " temporary " << f.string() << '\n';
    for (const auto& f : cleanup.removed_orphans) std::cout << verb << " orphan " << f.string() << '\n';
    for (const auto& f : cleanup.failures) std::cerr << "error: cannot remove " << f << '\n';
    std::cout << verb << " " << cleanup.removed_temporaries.size() << " temporaries and " << cleanup.removed_orphans.size()
              << " orphans\n";
    return cleanup.failures.empty() ? 0 : 1;
  }
  throw UsageError("unknown cache action '" + action + "' (ls, verify or gc)");
}

}  // namespace histoflow::cli
