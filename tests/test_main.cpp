#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "histoflow/cpu_kernels.hpp"
#include "histoflow/sanitizer_options.hpp"

// Tests run on the kernels users' runs get (flowrun and histoflow-ssl-train choose them the same way).
int main(int argc, char** argv) {
  histoflow::use_widest_cpu_kernels();
  return Catch::Session().run(argc, argv);
}
