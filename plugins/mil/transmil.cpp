// TransMIL (Shao et al. 2021): tiles projected to hidden_dim, padded to a square grid, a class token, two
// Nystrom attention layers (8 heads, hidden_dim / 2 landmarks, as the original) with the pyramid position
// encoding generator (PPEG: depthwise 7/5/3 convolutions on the grid) between them. Memory and time linear in
// the tiles: a 50,000-tile bag is a 224 x 224 grid.
#include <cmath>

#include "builtin_aggregators.hpp"
#include "nystrom_attention.hpp"

namespace histoflow::mil {
namespace {

class TransMil final : public Aggregator {
 public:
  explicit TransMil(const AggregatorOptions& o) : dropout_(o.dropout) {
    const auto d = o.hidden_dim;
    project_ = register_module("project", torch::nn::Linear(o.input_dim, d));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, d}));
    layer1_ = register_module("layer1", NystromAttentionLayer(d, 8, std::max<std::int64_t>(d / 2, 1)));
    layer2_ = register_module("layer2", NystromAttentionLayer(d, 8, std::max<std::int64_t>(d / 2, 1)));
    for (int kernel : {7, 5, 3})
      ppeg_.push_back(register_module("ppeg" + std::to_string(kernel),
                                      torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d, kernel).padding(kernel / 2).groups(d))));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    classifier_ = register_module("classifier", torch::nn::Linear(d, o.classes));
  }

  AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t>, torch::Generator& generator) override {
    auto h = torch::relu(project_(bag));  // [N, d]
    const std::int64_t n = h.size(0), d = h.size(1);
    const auto side = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    std::int64_t missing = side * side - n;
    while (missing > 0) {  // pad by repeating the first tiles, as TransMIL does
      const std::int64_t take = std::min(missing, n);
      h = torch::cat({h, h.slice(0, 0, take)});
      missing -= take;
    }
    auto x = torch::cat({cls_token_, h});
    x = layer1_->forward(x, dropout_, generator);
    auto grid = x.slice(0, 1).transpose(0, 1).reshape({1, d, side, side});
    auto encoded = grid;
    for (auto& conv : ppeg_) encoded = encoded + conv(grid);
    x = torch::cat({x.slice(0, 0, 1), encoded.reshape({d, side * side}).transpose(0, 1)});
    x = layer2_->forward(x, dropout_, generator);
    return {classifier_(norm_(x.slice(0, 0, 1))).squeeze(0), {}, {}};
  }

 private:
  double dropout_;
  torch::nn::Linear project_{nullptr}, classifier_{nullptr};
  torch::Tensor cls_token_;
  NystromAttentionLayer layer1_{nullptr}, layer2_{nullptr};
  std::vector<torch::nn::Conv2d> ppeg_;
  torch::nn::LayerNorm norm_{nullptr};
};

}  // namespace

std::shared_ptr<Aggregator> make_transmil(const AggregatorOptions& options) { return std::make_shared<TransMil>(options); }

}  // namespace histoflow::mil
