#pragma once
// Default AddressSanitizer options of histoflow's executables (flowrun, the test programs): include this header
// in exactly one source file of an executable. Options in the environment's ASAN_OPTIONS still take precedence.
//
// intercept_tls_get_addr=0: at exit LeakSanitizer walks every thread's dynamic TLS blocks, which it records by
// intercepting __tls_get_addr. Once a process has dlopened more TLS-using libraries than glibc's initial DTV
// holds (every plugin, LibTorch, libvips, ...), glibc 2.36 reallocates the DTV and LeakSanitizer walks a stale
// copy: its stop-the-world tracer crashes ("Tracer caught signal 11", "LeakSanitizer has encountered a fatal
// error") after every test has passed. The leak check still runs; only its tracking of dynamic TLS is off.
//
// Leak suppressions: fontconfig (loaded by librsvg, which rasterises the stages' figures) builds its font cache
// once per process and never frees it; LeakSanitizer counts that as leaked. Nothing of histoflow's is suppressed.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() { return "intercept_tls_get_addr=0"; }
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif
