#pragma once
// A folder of cached results (feature files, tile grids): what `flowrun cache ls | verify | gc` works on.
// Entries are sealed files (histoflow/sealed_file.hpp); temporaries are "<name>.tmp-<pid>-<host>-<n>" files
// that a writer leaves behind when it is killed.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/sealed_file.hpp"

namespace histoflow {

struct CacheEntry {
  std::filesystem::path file;
  std::optional<SealedHeader> header;  // nullopt: not a sealed file (an orphan: no checksum to trust)
  std::uintmax_t bytes = 0;
};

struct CacheTemporary {
  std::filesystem::path file;
  // The process named in the file name still runs and may be writing; a writer on another host of a cluster
  // cannot be asked, so its temporary counts as in use too.
  bool writer_alive = false;
};

struct CacheScan {
  std::vector<CacheEntry> entries;         // sorted by path
  std::vector<CacheTemporary> temporaries;
};

// "<item id, made file-safe>-<first 12 hex of fingerprint><extension>": how cached results of one item
// (a slide) are named inside their lineage folder.
std::string cache_file_name(const std::string& item_id, const std::string& fingerprint, const std::string& extension);

CacheScan scan_cache(const std::filesystem::path& root);  // throws when root is not a folder

struct CacheCleanup {
  std::vector<std::filesystem::path> removed_temporaries;
  std::vector<std::filesystem::path> removed_orphans;  // unsealed files, or sealed files failing verification
  std::vector<std::string> failures;                   // what could not be removed, and why
};

// Removes temporaries whose writer is gone, and entries that are not sealed or fail verification. With
// dry_run, only lists what it would remove.
CacheCleanup clean_cache(const std::filesystem::path& root, bool dry_run);

}  // namespace histoflow
