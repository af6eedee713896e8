#pragma once
// Crash-safe output: data goes to a temporary file in the destination folder, is flushed to disk and
// renamed over the final name. A file with the final name is therefore always complete.
#include <filesystem>
#include <fstream>
#include <string>

namespace histoflow {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path destination);  // creates parent folders; throws with the path
  ~AtomicFile();                                            // removes the temporary unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return stream_; }
  const std::filesystem::path& temp_path() const { return temp_; }
  void commit();  // flush, fsync, rename; throws with the path on any failure

 private:
  std::filesystem::path destination_;
  std::filesystem::path temp_;
  std::ofstream stream_;
  bool committed_ = false;
};

// Writes `content` to `destination` atomically.
void write_file_atomically(const std::filesystem::path& destination, const std::string& content);

// Temporary files carry this marker so cleanup tools can recognise them: "<name>.tmp-<pid>-<host>-<n>".
inline constexpr const char* kTempMarker = ".tmp-";

// The part of a temporary's name after `<name>`: kTempMarker, this process's pid and host (dashes in the host name
// become '_'), then `tag` and a counter. Processes on several machines writing one shared folder never collide.
std::string temp_name_suffix(const std::string& tag = "");
// This machine's short host name (at most 32 characters, '-' as '_'), as temporaries and lock files carry it.
const std::string& this_host();

}  // namespace histoflow
