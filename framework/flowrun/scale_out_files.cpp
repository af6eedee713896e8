#include "scale_out_files.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "histoflow/atomic_file.hpp"
#include "histoflow/scale_out.hpp"

extern char** environ;

namespace histoflow::cli {

std::filesystem::path shard_folder(const std::filesystem::path& output_dir, const RunShard& shard) {
  return output_dir / "shards" / shard.name();
}

std::filesystem::path slurm_folder(const std::filesystem::path& output_dir) { return output_dir / "slurm"; }

RunShard shard_of_this_task() {
  std::map<std::string, std::string> environment;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string text(*entry);
    if (text.rfind("SLURM_ARRAY_", 0) != 0) continue;
    const auto eq = text.find('=');
    if (eq != std::string::npos) environment[text.substr(0, eq)] = text.substr(eq + 1);
  }
  const auto shard = shard_from_slurm(environment);
  if (!shard) return {};
  if (shard->split()) std::cerr << "flowrun: Slurm array task: shard " << shard->index << "/" << shard->count << "\n";
  else std::cerr << "flowrun: a one-task Slurm array: every item (pass --shard I/N to run one shard of N)\n";
  return *shard;
}

void record_run_start(const std::filesystem::path& folder) {
  nlohmann::json record{{"pid", ::getpid()}, {"host", this_host()},
                        {"started_unix", std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch()).count()}};
  for (const char* name : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST"})
    if (const char* value = std::getenv(name)) record["slurm"][name] = value;
  write_file_atomically(folder / "run_started.json", record.dump(2) + "\n");
}

}  // namespace histoflow::cli
