#pragma once
// Scratch folders for tests, removed when the test process ends.
#include <filesystem>
#include <string>

namespace histoflow::testing {

// A fresh, empty folder under the system temp folder, unique per call. Every such folder is removed when the
// process exits normally, so a suite run leaves nothing behind in a small /tmp (two builds' runs would
// otherwise fill it); set HISTOFLOW_KEEP_TEST_FILES=1 to keep them for a look after a failure.
std::filesystem::path fresh_folder(const std::string& name);

}  // namespace histoflow::testing
