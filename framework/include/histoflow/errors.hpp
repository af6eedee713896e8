#pragma once
// Failure handling: per-item errors become records and the run goes on; FatalError stops the run.
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace histoflow {

// Thrown by a stage when continuing makes no sense (model cannot load, output folder unwritable).
class FatalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown for invalid user input detected outside graph validation (bad CLI arguments, unreadable files).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ErrorRecord {
  std::string stage;     // stage id in the graph
  std::string item;      // provenance item id (slide path/id), may be empty
  std::uint64_t sequence = 0;
  std::string message;
};

// Thread-safe list of the run's error records; stages can read it at flush to report failures.
// Warnings are losses the graph chose to tolerate (a tile_reader skipping unreadable tiles): listed with the
// run's result and in run_summary.json, but they do not make the run "completed with errors".
class ErrorLog {
 public:
  void add(ErrorRecord record);
  std::vector<ErrorRecord> snapshot() const;
  std::size_t size() const;

  void warn(ErrorRecord record);
  std::vector<ErrorRecord> warnings() const;

 private:
  mutable std::mutex mutex_;
  std::vector<ErrorRecord> records_;
  std::vector<ErrorRecord> warnings_;
};

}  // namespace histoflow
