// Manifests: CSV details, path resolution, and every problem reported at once.
#include <catch2/catch.hpp>
#include <fstream>

#include "histoflow/csv.hpp"
#include "histoflow/slides/manifest.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow::slides;
using histoflow::CsvTable;
using histoflow::parse_csv;
using histoflow::testing::fresh_folder;

namespace {
void write(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << text;
}
}  // namespace

TEST_CASE("csv: quotes, doubled quotes, embedded delimiters and newlines, CRLF, BOM, blank lines", "[csv]") {
  const CsvTable t = parse_csv("\xEF\xBB\xBFslide,note\r\n\"a,b.svs\",\"say \"\"hi\"\"\"\r\n\nc.svs,\"two\nlines\"\n", ',', "m.csv");
  REQUIRE(t.header == std::vector<std::string>{"slide", "note"});
  REQUIRE(t.records.size() == 2);
  CHECK(t.records[0].fields == std::vector<std::string>{"a,b.svs", "say \"hi\""});
  CHECK(t.records[0].line == 2);
  CHECK(t.records[1].fields == std::vector<std::string>{"c.svs", "two\nlines"});
  CHECK(t.records[1].line == 4);
  CHECK(parse_csv("a;b\n1;2\n", ';', "x").records[0].fields[1] == "2");
  CHECK_THROWS_WITH(parse_csv("a\n\"open", ',', "m.csv"), Catch::Contains("m.csv:2: unterminated quoted field"));
  CHECK_THROWS_WITH(parse_csv("\n\n", ',', "m.csv"), Catch::Contains("empty"));
}

TEST_CASE("manifest: relative paths resolve against its folder, with ids, patients, labels, cohort, mpp", "[manifest]") {
  const auto dir = fresh_folder("manifest-ok");
  write(dir / "slides" / "s1.svs", "x");
  write(dir / "slides" / "s2.svs", "x");
  write(dir / "m.csv", "slide,patient,msi,cohort,mpp\nslides/s1.svs,P1,MSI,train,0.25\nslides/s2.svs,P1,MSS,train,\n");
  ManifestOptions options;
  options.label_columns = {"msi"};
  options.cohort_column = "cohort";
  options.mpp_column = "mpp";
  const Manifest m = load_manifest(dir / "m.csv", options);
  REQUIRE(m.slides.size() == 2);
  CHECK(m.slides[0].id == "s1");
  CHECK(m.slides[0].path == (dir / "slides" / "s1.svs"));
  CHECK(m.slides[0].patient == "P1");
  CHECK(m.slides[0].labels.at("msi") == "MSI");
  CHECK(m.slides[0].cohort == "train");
  REQUIRE(m.slides[0].mpp);
  CHECK(*m.slides[0].mpp == 0.25);
  CHECK_FALSE(m.slides[1].mpp);
}

TEST_CASE("manifest: every problem is reported at once, missing files together", "[manifest]") {
  const auto dir = fresh_folder("manifest-bad");
  write(dir / "a.svs", "x");
  write(dir / "m.csv",
        "slide,patient,label,mpp\n"
        "a.svs,P1,1,0.5\n"
        "gone1.svs,P2,0,\n"
        "a.svs,P3,1,\n"          // duplicate id 'a'
        "gone2.svs,P4,,\n"       // missing file and empty label
        "a2.svs,,1,abc\n"        // missing file, empty patient, bad mpp
        "a3.svs,P5\n");          // wrong field count
  ManifestOptions options;
  options.mpp_column = "mpp";
  try {
    load_manifest(dir / "m.csv", options);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    const std::string text = e.what();
    INFO(text);
    CHECK_THAT(text, Catch::Contains("m.csv:4: duplicate slide id 'a' (first on line 2)"));
    CHECK_THAT(text, Catch::Contains("m.csv:5: slide 'gone2': empty label 'label'"));
    CHECK_THAT(text, Catch::Contains("m.csv:6: slide 'a2': empty patient id"));
    CHECK_THAT(text, Catch::Contains("m.csv:6: slide 'a2': mpp 'abc' is not a number"));
    CHECK_THAT(text, Catch::Contains("m.csv:7: has 2 fields, the header has 4"));
    CHECK_THAT(text, Catch::Contains("3 slide file(s) not found"));
    CHECK_THAT(text, Catch::Contains("m.csv:3: slide 'gone1': file not found"));
    CHECK_THAT(text, Catch::Contains("m.csv:5: slide 'gone2': file not found"));
    CHECK_THAT(text, Catch::Contains("m.csv:6: slide 'a2': file not found"));
  }
}

TEST_CASE("manifest: a missing column names the available ones, the skip policy records missing files", "[manifest]") {
  const auto dir = fresh_folder("manifest-cols");
  write(dir / "a.svs", "x");
  write(dir / "m.csv", "path,patient,label\na.svs,P1,1\n");
  CHECK_THROWS_WITH(load_manifest(dir / "m.csv", ManifestOptions{}),
                    Catch::Contains("no slide column 'slide' (columns: 'path', 'patient', 'label')"));
  write(dir / "n.csv", "slide,patient,label\na.svs,P1,1\nmissing.svs,P2,0\n");
  ManifestOptions skip;
  skip.skip_missing = true;
  const Manifest m = load_manifest(dir / "n.csv", skip);
  CHECK(m.slides.size() == 1);
  REQUIRE(m.skipped.size() == 1);
  CHECK_THAT(m.skipped[0], Catch::Contains("missing.svs"));
}
