// histoflow-read-features KIND FILE [FLAG...]: one feature-file read with libhdf5, for the process that started it
// (feature_reader_process.cpp). The result or the error goes to file descriptor 3; if libhdf5 crashes on the
// file, only this process ends. KIND and FLAG: feature_wire.hpp.
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>
#include <string>

#include "feature_wire.hpp"
#include "histoflow/features/feature_file_in_process.hpp"
#include "histoflow/input_limits.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define HISTOFLOW_READER_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HISTOFLOW_READER_UNDER_ASAN 1
#endif
#endif

namespace {

using namespace histoflow::features;

// libhdf5 allocates what a damaged file claims. This process takes at most 4x the file's size plus the limit
// feature_read_memory_bytes of address space (AddressSanitizer reserves terabytes: not in sanitizer builds), and
// asks to be the first process the kernel's out-of-memory killer ends.
std::uint64_t bound_memory(const std::filesystem::path& file) {
  std::ofstream("/proc/self/oom_score_adj") << 1000;
  std::error_code error;
  const std::uint64_t size = std::filesystem::file_size(file, error);
  const std::uint64_t bound = (error ? 0 : 4 * size) + histoflow::input_limit(histoflow::InputLimit::FeatureReadMemoryBytes);
#ifndef HISTOFLOW_READER_UNDER_ASAN
  const rlimit limit{bound, bound};
  ::setrlimit(RLIMIT_AS, &limit);
#endif
  return bound;
}

bool flag(int argc, char** argv, int index) { return index < argc && std::strcmp(argv[index], "1") == 0; }

template <typename Result>
void send(const Result& result) {
  wire::Writer out(wire::kChannelFd);
  out.number(wire::kResult);
  wire::put(out, result);
  out.number(wire::kEndMarker);
  out.flush();
}

void read_and_send(int argc, char** argv) {
  const std::string kind = argv[1];
  const std::filesystem::path file = argv[2];
  if (kind == wire::kSlide) return send(in_process::read_slide_features(file, flag(argc, argv, 3), flag(argc, argv, 4)));
  if (kind == wire::kCoordinates) return send(in_process::read_coordinates(file));
  if (kind == wire::kPatch) return send(in_process::read_patch_features(file, flag(argc, argv, 3), flag(argc, argv, 4)));
  if (kind == wire::kShape) return send(in_process::read_feature_shape(file));
  if (kind == wire::kAttributes) return send(in_process::read_feature_attributes(file));
  throw std::invalid_argument("histoflow-read-features: unknown read '" + kind + "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: histoflow-read-features slide|coordinates|patch|shape|attributes FILE [FLAG...]\n"
                 "(started by histoflow's feature-file readers; the result goes to file descriptor 3)\n";
    return 2;
  }
  const std::uint64_t memory = bound_memory(argv[2]);
  std::string error;
  try {
    read_and_send(argc, argv);
  } catch (const std::bad_alloc&) {
    error = "feature file '" + std::string(argv[2]) + "': reading it needs more than the " + std::to_string(memory) +
            " bytes a reader process may use (4x the file's size and the limit feature_read_memory_bytes; raise it with " +
            histoflow::input_limit_variable(histoflow::InputLimit::FeatureReadMemoryBytes) + ")";
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) {
    try {
      wire::Writer out(wire::kChannelFd);
      out.number(wire::kError);
      out.text(error);
      out.number(wire::kEndMarker);
      out.flush();
    } catch (const std::exception& channel) {
      std::cerr << "histoflow-read-features: " << error << " (and " << channel.what() << ")\n";
      _exit(1);
    }
  }
  // Ends at once: its memory goes with it, libhdf5's exit handlers have nothing to save for a file read, and the
  // exit-time leak check of a sanitizer build would count what a damaged file made libhdf5 leak (the in-process
  // fuzzer, with its suppressions, is where leaks are looked for).
  _exit(0);
}
