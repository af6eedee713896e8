#pragma once
// LeakSanitizer suppressions for leaks inside libraries histoflow calls, found by fuzzing, that no histoflow code can
// release. The fuzz executables and the regression replay compile them in. They match only with the slow unwinder
// (ASAN_OPTIONS=fast_unwind_on_malloc=0): these libraries have no frame pointers.
namespace histoflow::fuzz {

inline constexpr const char* kLibraryLeakSuppressions =
    // Debian's HDF5 1.10.8 leaks an object header (424 bytes) when it fails to load a damaged one from its cache
    // (H5O_protect, under H5Fopen's root group or H5Dopen2's object type); histoflow gets no handle to close.
    "leak:H5O_protect\n"
    // fontconfig's font cache, built once per process (histoflow/sanitizer_options.hpp).
    "leak:libfontconfig.so\n";

}  // namespace histoflow::fuzz
