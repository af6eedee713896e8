// The public readers of feature_file.hpp: each read runs in a reader process (histoflow-read-features), because
// libhdf5 1.10 crashes on some damaged files (a use-after-free building a damaged attribute table, among others the
// fuzzer found: tests/fuzz/library_findings/). There the crash ends that process; here it becomes an error naming
// the file, and the stage fails that item alone. posix_spawn (no fork of this multi-threaded process: a copy of
// another thread's held HDF5 or allocator lock would deadlock the copy); the result comes back in a memory file.
#include <dlfcn.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "feature_wire.hpp"
#include "histoflow/features/feature_file.hpp"
#include "histoflow/input_limits.hpp"

extern char** environ;

namespace histoflow::features {
namespace {

constexpr const char* kReaderName = "histoflow-read-features";

// HISTOFLOW_FEATURE_READER, else beside the module holding this code (the features plugin, a test or tool
// executable) or in its ../bin (plugins/ and bin/ are siblings in the build and install trees).
std::filesystem::path find_reader_executable() {
  if (const char* named = std::getenv("HISTOFLOW_FEATURE_READER"); named && *named) return named;
  std::vector<std::filesystem::path> modules;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&find_reader_executable), &info) != 0 && info.dli_fname && info.dli_fname[0] == '/')
    modules.emplace_back(info.dli_fname);
  std::error_code error;
  if (auto exe = std::filesystem::read_symlink("/proc/self/exe", error); !error) modules.push_back(exe);
  std::string looked;
  for (const auto& module : modules)
    for (const auto& folder : {module.parent_path(), module.parent_path().parent_path() / "bin"}) {
      const auto candidate = folder / kReaderName;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      looked += (looked.empty() ? "" : ", ") + folder.string();
    }
  throw std::runtime_error(std::string("the feature reader process '") + kReaderName + "' is not in " + looked +
                           " (build the target histoflow-read-features, or name it with HISTOFLOW_FEATURE_READER)");
}

const std::filesystem::path& reader_executable() {
  static const std::filesystem::path path = find_reader_executable();
  return path;
}

// This process's environment with every input limit in force written out: a limit set with set_input_limit (an
// embedding application, a test) applies in the reader process too.
std::vector<std::string> reader_environment() {
  std::vector<std::string> out;
  for (char** entry = environ; entry && *entry; ++entry)
    if (std::strncmp(*entry, "HISTOFLOW_LIMIT_", 16) != 0) out.emplace_back(*entry);
  for (int i = 0; i <= static_cast<int>(kLastInputLimit); ++i) {
    const auto limit = static_cast<InputLimit>(i);
    out.push_back(input_limit_variable(limit) + "=" + std::to_string(input_limit(limit)));
  }
  return out;
}

class MemoryFile {
 public:
  MemoryFile() : fd_(::memfd_create("histoflow-feature-read", MFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error(std::string("cannot create the reader process's channel: ") + std::strerror(errno));
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    return "crashed (signal " + std::to_string(signal) + ", " + strsignal(signal) + ")";
  }
  return "ended with exit status " + std::to_string(WEXITSTATUS(status)) + " before finishing";
}

// Waits for the reader process until the limit feature_read_seconds: libhdf5 loops forever on some damaged files
// (found by fuzzing). False when the time ran out (the process is still there).
bool wait_within_limit(pid_t pid, int& status, const std::string& context) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(input_limit(InputLimit::FeatureReadSeconds));
  int pidfd = -1;  // readable when the process ends (Linux 5.3); otherwise poll every few milliseconds
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
  bool ended = false;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      ended = true;
      break;
    }
    if (done < 0 && errno != EINTR) {
      if (pidfd >= 0) ::close(pidfd);
      throw std::runtime_error(context + ": lost the reader process: " + std::strerror(errno));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    if (pidfd >= 0) {
      pollfd ready{pidfd, POLLIN, 0};
      ::poll(&ready, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    } else {
      ::usleep(static_cast<useconds_t>(std::min<long long>(left, 2) * 1000));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return ended;
}

template <typename Result>
Result read_in_reader_process(const char* kind, const std::filesystem::path& file, std::vector<std::string> flags = {}) {
  const std::string context = "feature file '" + file.string() + "'";
  MemoryFile channel;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, channel.fd(), wire::kChannelFd);  // dup2 clears close-on-exec
  std::vector<std::string> arguments{kReaderName, kind, file.string()};
  arguments.insert(arguments.end(), flags.begin(), flags.end());
  std::vector<std::string> environment = reader_environment();
  std::vector<char*> argv, envp;
  for (auto& a : arguments) argv.push_back(a.data());
  for (auto& e : environment) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, reader_executable().c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    throw std::runtime_error(context + ": cannot start the reader process '" + reader_executable().string() +
                             "': " + std::strerror(spawned));
  int status = 0;
  if (!wait_within_limit(pid, status, context)) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error(context + ": libhdf5 had not finished reading it after " +
                             std::to_string(input_limit(InputLimit::FeatureReadSeconds)) +
                             " s, the limit feature_read_seconds (raise it with " +
                             input_limit_variable(InputLimit::FeatureReadSeconds) +
                             "): the reader process was stopped; the file is damaged or not what it claims to be");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(context + ": libhdf5 " + how_it_ended(status) +
                             " reading it in the reader process: the file is damaged or not what it claims to be");
  wire::Reader in(channel.fd(), context);
  Result result{};
  const std::uint64_t tag = in.number();
  if (tag == wire::kError) throw std::runtime_error(in.text());
  if (tag != wire::kResult) throw std::runtime_error(context + ": the reader process sent an incomplete result");
  wire::get(in, result);
  if (in.number() != wire::kEndMarker || !in.at_end())
    throw std::runtime_error(context + ": the reader process sent an incomplete result");
  return result;
}

std::string flag(bool value) { return value ? "1" : "0"; }

}  // namespace

SlideFeatures read_slide_features(const std::filesystem::path& file, bool verify, bool require_coords) {
  return read_in_reader_process<SlideFeatures>(wire::kSlide, file, {flag(verify), flag(require_coords)});
}

SlideFeatures read_coordinates(const std::filesystem::path& file) {
  return read_in_reader_process<SlideFeatures>(wire::kCoordinates, file);
}

PatchFeatures read_patch_features(const std::filesystem::path& file, bool verify, bool complete) {
  return read_in_reader_process<PatchFeatures>(wire::kPatch, file, {flag(verify), flag(complete)});
}

FeatureFileShape read_feature_shape(const std::filesystem::path& file) {
  return read_in_reader_process<FeatureFileShape>(wire::kShape, file);
}

AttributeMap read_feature_attributes(const std::filesystem::path& file) {
  return read_in_reader_process<AttributeMap>(wire::kAttributes, file);
}

}  // namespace histoflow::features
