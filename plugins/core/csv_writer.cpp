// Writes feature rows to one CSV file. Rows are sorted by item and tile position so that the file is
// identical whatever the thread timing, and the file appears atomically at end of stream.
#include <algorithm>
#include <iomanip>
#include <mutex>
#include <sstream>

#include "core_stages.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/csv.hpp"

namespace histoflow::core {
namespace {

class CsvWriter final : public Stage {
 public:
  explicit CsvWriter(const StageContext& context)
      : path_(context.experiment.output_dir / context.params.get_string("file")),
        precision_(static_cast<int>(context.params.get_int("precision"))) {}

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    const Tensor& t = input->tensor;
    if (t.dtype() != DType::Float32 || t.dim() != 2)
      throw std::invalid_argument("expected float32 [rows, dims] features, got " + t.describe());
    if (static_cast<std::int64_t>(input->rows.size()) != t.shape()[0])
      throw std::invalid_argument("features have " + std::to_string(t.shape()[0]) + " rows but " +
                                  std::to_string(input->rows.size()) + " provenance entries");
    if (width_ < 0) width_ = t.shape()[1];
    if (t.shape()[1] != width_)
      throw std::invalid_argument("features of width " + std::to_string(t.shape()[1]) + " after width " +
                                  std::to_string(width_) + ": one file takes one encoder");
    const float* values = t.data<float>();
    for (std::size_t r = 0; r < input->rows.size(); ++r)
      rows_.push_back({input->rows[r], std::vector<float>(values + r * width_, values + (r + 1) * width_)});
  }

  void flush(Emitter&) override {
    std::sort(rows_.begin(), rows_.end(), [](const Row& a, const Row& b) {
      const auto key = [](const Row& r) {
        const TileCoord c = r.provenance.tile.value_or(TileCoord{});
        return std::make_tuple(r.provenance.sequence, r.provenance.item_id, c.y, c.x);
      };
      return key(a) < key(b);
    });
    AtomicFile file(path_);
    auto& out = file.stream();
    out << "item,sequence,x,y";
    for (std::int64_t d = 0; d < std::max<std::int64_t>(width_, 0); ++d) out << ",f" << d;
    out << '\n' << std::setprecision(precision_);
    for (const auto& row : rows_) {
      const TileCoord c = row.provenance.tile.value_or(TileCoord{});
      out << csv_field(row.provenance.item_id) << ',' << row.provenance.sequence << ',' << c.x << ',' << c.y;
      for (float v : row.values) out << ',' << v;
      out << '\n';
    }
    file.commit();
    written_ = true;
  }

  std::vector<StageResult> results() const override {
    if (!written_) return {};
    return {{"CSV", std::filesystem::absolute(path_)}};
  }

 private:
  struct Row {
    Provenance provenance;
    std::vector<float> values;
  };
  std::filesystem::path path_;
  int precision_;
  std::int64_t width_ = -1;
  std::vector<Row> rows_;
  bool written_ = false;
};

}  // namespace

void register_csv_writer(Registry& registry) {
  StageContract c;
  c.type = "csv_writer";
  c.summary = "Writes feature rows (item, sequence, x, y, f0..fN) to a CSV file in the output folder";
  c.doc = "Rows are sorted by sequence, item id and tile position; the file is written atomically at end of stream.";
  c.inputs = {{"features", kFeaturesKind, "float32 [rows, dims] with one provenance per row"}};
  c.params = {param_string("file", "features.csv", "File name, relative to the experiment output folder"),
              param_int("precision", 6, "Significant digits written per value", 1, 17)};
  c.example = "[stage.csv]\nuse = \"csv_writer\"\ninput = \"stats\"\nfile = \"features.csv\"\n";
  c.needs_every_item = true;  // one file of every item
  register_stage<CsvWriter>(registry, std::move(c));
}

}  // namespace histoflow::core
