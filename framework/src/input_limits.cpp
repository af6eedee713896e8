#include "histoflow/input_limits.hpp"

#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace histoflow {
namespace {

// Defaults sit far above real data (a 50,000-tile slide × 1,536 features is 7.7e7 values; a ViT-g checkpoint holds
// ~600 tensors) and far below what would exhaust a workstation.
constexpr std::array<InputLimitInfo, 15> kLimits{{
    {"graph_file_bytes", 16u << 20, "bytes of a graph file"},
    {"manifest_rows", 1'000'000, "rows of a manifest"},
    {"csv_file_bytes", 1u << 30, "bytes of a CSV file"},
    {"safetensors_header_bytes", 100'000'000, "bytes of a safetensors header"},
    {"safetensors_tensors", 100'000, "tensors in a safetensors file"},
    {"archive_members", 1'000'000, "files in a checkpoint archive"},
    {"pickle_objects", 10'000'000, "objects built by a pickle"},
    {"pickle_nesting", 1'000, "levels of nested containers in a pickle"},
    {"pickle_memo", 10'000'000, "memo entries of a pickle"},
    {"tensor_dimensions", 64, "dimensions of a tensor"},
    {"image_pixels", 178'956'970, "pixels of one decoded image"},  // Pillow's decompression-bomb error threshold
    {"feature_values", std::uint64_t{1} << 32, "values of one feature matrix"},
    {"label_classes", 1'000'000, "classes implied by the label numbers"},
    {"feature_read_seconds", 600, "seconds of one feature-file read"},
    {"feature_read_memory_bytes", std::uint64_t{2} << 30, "bytes of memory one feature-file read may use beyond 4x the file's size"},
}};
static_assert(kLimits.size() == static_cast<std::size_t>(kLastInputLimit) + 1, "one entry per InputLimit");

std::uint64_t parse_override(const std::string& variable, const char* text) {
  const std::string value(text);
  std::uint64_t out = 0;
  bool digits = !value.empty();
  for (const char c : value) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || out > (UINT64_MAX - 9) / 10) {
      digits = false;
      break;
    }
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!digits || out == 0) throw std::runtime_error(variable + "='" + value + "' is not a positive whole number");
  return out;
}


// Read once per process: a parser in a hot loop must not call getenv, and a run must not change its limits midway.
struct LimitValues {
  std::array<std::atomic<std::uint64_t>, kLimits.size()> values{};
  std::string error;  // a malformed HISTOFLOW_LIMIT_* variable

  LimitValues() {
    for (std::size_t i = 0; i < kLimits.size(); ++i) {
      values[i] = kLimits[i].default_value;
      const std::string variable = input_limit_variable(static_cast<InputLimit>(i));
      if (const char* text = std::getenv(variable.c_str())) {
        try {
          values[i] = parse_override(variable, text);
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
    }
  }
};

LimitValues& limit_values() {
  static LimitValues limits;
  return limits;
}

}  // namespace

const InputLimitInfo& input_limit_info(InputLimit limit) { return kLimits.at(static_cast<std::size_t>(limit)); }

std::string input_limit_variable(InputLimit limit) {
  std::string variable = "HISTOFLOW_LIMIT_";
  for (const char* c = input_limit_info(limit).name; *c; ++c) variable += static_cast<char>(std::toupper(static_cast<unsigned char>(*c)));
  return variable;
}

std::uint64_t input_limit(InputLimit limit) {
  const LimitValues& limits = limit_values();
  if (!limits.error.empty()) throw std::runtime_error(limits.error);
  return limits.values.at(static_cast<std::size_t>(limit)).load(std::memory_order_relaxed);
}

std::uint64_t set_input_limit(InputLimit limit, std::uint64_t value) {
  if (value == 0) throw std::invalid_argument(std::string("the limit ") + input_limit_info(limit).name + " must be positive");
  return limit_values().values.at(static_cast<std::size_t>(limit)).exchange(value);
}

std::string input_limit_message(InputLimit limit, std::uint64_t value, const std::string& context) {
  const auto& info = input_limit_info(limit);
  return context + ": " + std::to_string(value) + " " + info.what + " exceed the limit " + info.name + " = " +
         std::to_string(input_limit(limit)) + " (raise it with " + input_limit_variable(limit) + ")";
}

void check_input_limit(InputLimit limit, std::uint64_t value, const std::string& context) {
  if (value > input_limit(limit)) throw std::runtime_error(input_limit_message(limit, value, context));
}

std::string read_file_within_limit(const std::filesystem::path& file, InputLimit limit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + file.string() + "': " + std::strerror(errno));
  const std::uint64_t most = input_limit(limit);
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > most) throw std::runtime_error(input_limit_message(limit, text.size(), "'" + file.string() + "'") + "; stopped reading");
  }
  if (in.bad()) throw std::runtime_error("cannot read '" + file.string() + "': " + std::strerror(errno));
  return text;
}

}  // namespace histoflow
