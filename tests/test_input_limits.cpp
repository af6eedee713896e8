#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "histoflow/graph.hpp"
#include "histoflow/input_limits.hpp"
#include "support/fresh_folder.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;

TEST_CASE("a limit's error names the input, the limit and the variable that raises it", "[limits]") {
  ScopedInputLimit lowered(InputLimit::ImagePixels, 100);
  CHECK_NOTHROW(check_input_limit(InputLimit::ImagePixels, 100, "image 'x.png'"));
  CHECK_THROWS_WITH(check_input_limit(InputLimit::ImagePixels, 101, "image 'x.png'"),
                    "image 'x.png': 101 pixels of one decoded image exceed the limit image_pixels = 100 "
                    "(raise it with HISTOFLOW_LIMIT_IMAGE_PIXELS)");
  CHECK(input_limit_variable(InputLimit::PickleNesting) == "HISTOFLOW_LIMIT_PICKLE_NESTING");
  CHECK_THROWS_WITH(set_input_limit(InputLimit::ImagePixels, 0), "the limit image_pixels must be positive");
}

TEST_CASE("a graph path naming an endless device fails at the byte limit instead of filling memory", "[limits]") {
  ScopedInputLimit lowered(InputLimit::GraphFileBytes, 1 << 20);
  const GraphLoad load = load_graph("/dev/zero", {}, testing::shared_loader());
  REQUIRE(load.diagnostics.size() == 1);
  CHECK_THAT(load.diagnostics[0].message, Catch::Contains("exceed the limit graph_file_bytes = 1048576") &&
                                               Catch::Contains("HISTOFLOW_LIMIT_GRAPH_FILE_BYTES"));
}

TEST_CASE("a file at its byte limit is read whole, one byte over is refused", "[limits]") {
  const auto folder = testing::fresh_folder("input_limits");
  const auto file = folder / "rows.csv";
  std::ofstream(file) << std::string(1000, 'a');
  ScopedInputLimit lowered(InputLimit::CsvFileBytes, 1000);
  CHECK(read_file_within_limit(file, InputLimit::CsvFileBytes).size() == 1000);
  std::ofstream(file, std::ios::app) << 'b';
  CHECK_THROWS_WITH(read_file_within_limit(file, InputLimit::CsvFileBytes),
                    Catch::Contains("1001 bytes of a CSV file exceed the limit csv_file_bytes = 1000"));
}
