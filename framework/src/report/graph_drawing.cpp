// The run's graph as an SVG drawing: stages in columns by their longest path from a source (data flows left to
// right), ordered within a column by the mean position of their inputs (fewer crossings), edges as curves with
// arrowheads; `after` (phase) dependencies dashed. No Graphviz at run time.
#include <algorithm>
#include <map>
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {

std::string draw_graph(const std::vector<GraphStage>& stages) {
  const std::size_t n = stages.size();
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index[stages[i].id] = i;
  struct Edge {
    std::size_t from, to;
    bool phase;
  };
  std::vector<Edge> edges;
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& input : stages[i].inputs)
      if (auto it = index.find(input); it != index.end()) edges.push_back({it->second, i, false});
    for (const auto& before : stages[i].after)
      if (auto it = index.find(before); it != index.end()) edges.push_back({it->second, i, true});
  }
  // Longest path from a source; n rounds settle any acyclic graph (a validated graph has no cycle).
  std::vector<std::size_t> layer(n, 0);
  for (std::size_t round = 0; round < n; ++round) {
    bool changed = false;
    for (const auto& e : edges)
      if (layer[e.to] < layer[e.from] + 1) layer[e.to] = layer[e.from] + 1, changed = true;
    if (!changed) break;
  }
  const std::size_t layers = n == 0 ? 0 : *std::max_element(layer.begin(), layer.end()) + 1;
  std::vector<std::vector<std::size_t>> columns(layers);
  for (std::size_t i = 0; i < n; ++i) columns[layer[i]].push_back(i);
  std::vector<double> position(n, 0);
  const auto renumber = [&] {
    for (const auto& column : columns)
      for (std::size_t k = 0; k < column.size(); ++k) position[column[k]] = static_cast<double>(k);
  };
  renumber();
  for (int sweep = 0; sweep < 4; ++sweep) {
    for (std::size_t l = 1; l < layers; ++l) {
      std::map<std::size_t, std::pair<double, int>> sums;
      for (const auto& e : edges)
        if (layer[e.to] == l) sums[e.to].first += position[e.from], ++sums[e.to].second;
      auto& column = columns[l];
      std::stable_sort(column.begin(), column.end(), [&](std::size_t a, std::size_t b) {
        const double pa = sums.count(a) ? sums[a].first / sums[a].second : position[a];
        const double pb = sums.count(b) ? sums[b].first / sums[b].second : position[b];
        return pa < pb;
      });
      renumber();
    }
  }
  constexpr double kBoxHeight = 40, kRowGap = 14, kColumnGap = 56, kMargin = 12;
  const auto box_width = [&](std::size_t i) {
    return 20 + 7.2 * static_cast<double>(std::max(stages[i].id.size(), stages[i].use.size() + 2));
  };
  std::vector<double> column_x(layers, kMargin), column_width(layers, 0);
  std::size_t tallest = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    for (const auto i : columns[l]) column_width[l] = std::max(column_width[l], box_width(i));
    if (l > 0) column_x[l] = column_x[l - 1] + column_width[l - 1] + kColumnGap;
    tallest = std::max(tallest, columns[l].size());
  }
  const double height = kMargin * 2 + static_cast<double>(tallest) * (kBoxHeight + kRowGap);
  const double width = layers == 0 ? 200 : column_x.back() + column_width.back() + kMargin;
  std::vector<double> x(n), y(n), w(n);
  for (std::size_t l = 0; l < layers; ++l) {
    // Each column centred vertically.
    const double top = kMargin + (static_cast<double>(tallest - columns[l].size()) * (kBoxHeight + kRowGap)) / 2;
    for (std::size_t k = 0; k < columns[l].size(); ++k) {
      const auto i = columns[l][k];
      w[i] = box_width(i);
      x[i] = column_x[l] + (column_width[l] - w[i]) / 2;
      y[i] = top + static_cast<double>(k) * (kBoxHeight + kRowGap);
    }
  }
  std::ostringstream svg;
  svg << "<defs><marker id=\"histoflow-graph-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
         "orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555555\"/></marker></defs>\n";
  for (const auto& e : edges) {
    const double x0 = x[e.from] + w[e.from], y0 = y[e.from] + kBoxHeight / 2, x1 = x[e.to], y1 = y[e.to] + kBoxHeight / 2;
    const double bend = std::max(24.0, (x1 - x0) / 2);
    svg << "<path d=\"M" << svg::fixed(x0, 1) << ',' << svg::fixed(y0, 1) << " C" << svg::fixed(x0 + bend, 1) << ',' << svg::fixed(y0, 1)
        << ' ' << svg::fixed(x1 - bend, 1) << ',' << svg::fixed(y1, 1) << ' ' << svg::fixed(x1, 1) << ',' << svg::fixed(y1, 1)
        << "\" fill=\"none\" stroke=\"#555555\" stroke-width=\"1.3\"" << (e.phase ? " stroke-dasharray=\"5 4\"" : "")
        << " marker-end=\"url(#histoflow-graph-arrow)\"/>\n";
  }
  for (std::size_t i = 0; i < n; ++i) {
    svg << "<g><title>" << svg::escape(stages[i].id + " (" + stages[i].use + ")") << "</title><rect x=\"" << svg::fixed(x[i], 1)
        << "\" y=\"" << svg::fixed(y[i], 1) << "\" width=\"" << svg::fixed(w[i], 1) << "\" height=\"" << kBoxHeight
        << "\" rx=\"6\" fill=\"#eef3fb\" stroke=\"#1f77b4\"/>\n<text x=\"" << svg::fixed(x[i] + w[i] / 2, 1) << "\" y=\""
        << svg::fixed(y[i] + 17, 1) << "\" text-anchor=\"middle\" font-weight=\"bold\">" << svg::escape(stages[i].id)
        << "</text><text x=\"" << svg::fixed(x[i] + w[i] / 2, 1) << "\" y=\"" << svg::fixed(y[i] + 32, 1)
        << "\" text-anchor=\"middle\" fill=\"#555555\" font-size=\"11\">" << svg::escape(stages[i].use) << "</text></g>\n";
  }
  return svg::document(width, height, svg.str(), " role=\"img\" aria-label=\"the run's graph\"");
}

}  // namespace histoflow::report
