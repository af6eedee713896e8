#include "histoflow/cache_folder.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"

namespace histoflow {
namespace {

struct TemporaryWriter {
  long pid = 0;
  std::string host;  // empty in names written before hosts were (then: this machine)
};

// "<name>.tmp-<pid>-<host>-<n>" (or "<name>.tmp-<pid>-<n>"): who writes it, or nullopt when the name is not a temporary's.
std::optional<TemporaryWriter> temporary_writer(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  const auto marker = name.rfind(kTempMarker);
  if (marker == std::string::npos) return std::nullopt;
  const std::string rest = name.substr(marker + std::char_traits<char>::length(kTempMarker));
  const auto dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos) return std::nullopt;
  TemporaryWriter writer;
  try {
    writer.pid = std::stol(rest.substr(0, dash));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (const auto last = rest.rfind('-'); last > dash) writer.host = rest.substr(dash + 1, last - dash - 1);
  return writer;
}

// A writer on another machine of the cluster cannot be asked: its temporary counts as in use.
bool writer_alive(const TemporaryWriter& writer) {
  if (!writer.host.empty() && writer.host != this_host()) return true;
  return writer.pid > 0 && (::kill(static_cast<pid_t>(writer.pid), 0) == 0 || errno == EPERM);
}

}  // namespace

std::string cache_file_name(const std::string& item_id, const std::string& fingerprint, const std::string& extension) {
  std::string name = item_id.empty() ? "_" : item_id;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return name + (fingerprint.empty() ? "" : "-" + fingerprint.substr(0, 12)) + extension;
}

CacheScan scan_cache(const std::filesystem::path& root) {
  if (!std::filesystem::is_directory(root)) throw std::runtime_error("cache folder '" + root.string() + "' does not exist");
  CacheScan scan;
  for (const auto& item : std::filesystem::recursive_directory_iterator(root)) {
    if (!item.is_regular_file()) continue;
    if (const auto writer = temporary_writer(item.path())) {
      scan.temporaries.push_back({item.path(), writer_alive(*writer)});
      continue;
    }
    CacheEntry entry{item.path(), std::nullopt, item.file_size()};
    try {
      entry.header = read_sealed_header(item.path());
    } catch (const std::exception&) {  // unreadable: treated like an unsealed file
    }
    scan.entries.push_back(std::move(entry));
  }
  std::sort(scan.entries.begin(), scan.entries.end(), [](const auto& a, const auto& b) { return a.file < b.file; });
  std::sort(scan.temporaries.begin(), scan.temporaries.end(), [](const auto& a, const auto& b) { return a.file < b.file; });
  return scan;
}

CacheCleanup clean_cache(const std::filesystem::path& root, bool dry_run) {
  const CacheScan scan = scan_cache(root);
  CacheCleanup cleanup;
  const auto remove = [&](const std::filesystem::path& file, std::vector<std::filesystem::path>& list) {
    std::error_code ec;
    if (!dry_run) std::filesystem::remove(file, ec);
    if (ec) cleanup.failures.push_back(file.string() + ": " + ec.message());
    else list.push_back(file);
  };
  for (const auto& t : scan.temporaries)
    if (!t.writer_alive) remove(t.file, cleanup.removed_temporaries);
  for (const auto& e : scan.entries)
    if (!e.header || !verify_sealed_file(e.file).empty()) remove(e.file, cleanup.removed_orphans);
  return cleanup;
}

}  // namespace histoflow
