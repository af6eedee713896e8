// Per-stage figures from a trace file: calls, busy time, utilisation, latency, throughput, bottleneck.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "histoflow/tracer.hpp"

namespace histoflow {

TraceSummary summarize_trace(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read trace file '" + file.string() + "'");
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error("trace file '" + file.string() + "' is not valid JSON: " + e.what());
  }
  if (!document.contains("traceEvents") || !document.contains("histoflow"))
    throw std::runtime_error("trace file '" + file.string() + "' was not written by flowrun --trace");

  TraceSummary summary;
  summary.wall_seconds = document["histoflow"].value("wall_us", 0.0) / 1e6;
  std::map<std::string, std::size_t> index;
  for (const auto& s : document["histoflow"]["stages"]) {
    StageTraceSummary stage;
    stage.id = s.at("id").get<std::string>();
    stage.type = s.value("type", "");
    stage.concurrency = s.value("concurrency", 1);
    index[stage.id] = summary.stages.size();
    summary.stages.push_back(stage);
  }
  std::vector<std::vector<double>> durations(summary.stages.size());
  std::vector<double> flush_us(summary.stages.size(), 0.0);
  std::vector<std::set<int>> threads(summary.stages.size());
  std::vector<std::vector<std::pair<double, double>>> spans(summary.stages.size());
  std::vector<std::vector<std::pair<double, std::int64_t>>> queue_samples(summary.stages.size());  // (ts, depth)
  for (const auto& e : document["traceEvents"]) {
    const std::string ph = e.value("ph", "");
    if (ph == "C") {
      const std::string name = e.value("name", "");
      if (name.rfind("queue ", 0) != 0 || !e.contains("args")) continue;
      if (auto it = index.find(name.substr(6)); it != index.end())
        queue_samples[it->second].emplace_back(e.value("ts", 0.0), e["args"].value("depth", std::int64_t{0}));
      continue;
    }
    if (ph != "X") continue;
    auto it = index.find(e.value("name", ""));
    if (it == index.end()) continue;
    const double dur_us = e.value("dur", 0.0);
    spans[it->second].emplace_back(e.value("ts", 0.0) / 1e6, (e.value("ts", 0.0) + dur_us) / 1e6);
    const std::string phase = e.contains("args") ? e["args"].value("phase", "") : "";
    if (phase == "flush") {  // busy, but not an item call
      flush_us[it->second] += dur_us;
      continue;
    }
    if (phase == "create" || phase == "open") {  // start-up: not busy time of the stream
      summary.stages[it->second].startup_seconds += dur_us / 1e6;
      continue;
    }
    if (phase == "close") {
      summary.stages[it->second].close_seconds += dur_us / 1e6;
      continue;
    }
    durations[it->second].push_back(dur_us);
    threads[it->second].insert(e.value("tid", 0));
    summary.stages[it->second].items += static_cast<std::uint64_t>(e["args"].value("batch", 1));
  }
  double best = -1;
  const double join_gap = summary.wall_seconds / 2000;
  for (std::size_t i = 0; i < summary.stages.size(); ++i) {
    auto& s = summary.stages[i];
    std::sort(spans[i].begin(), spans[i].end());
    for (const auto& span : spans[i]) {
      if (!s.busy_spans.empty() && span.first <= s.busy_spans.back().second + join_gap)
        s.busy_spans.back().second = std::max(s.busy_spans.back().second, span.second);
      else
        s.busy_spans.push_back(span);
    }
    // Threads record into their own buffers: order the samples in time, then weight each depth by how long
    // it lasted, so that a brief burst counts for little and a standing backlog for much.
    auto& samples = queue_samples[i];
    std::sort(samples.begin(), samples.end());
    double area = 0;
    for (std::size_t k = 0; k < samples.size(); ++k) {
      s.max_queue = std::max(s.max_queue, samples[k].second);
      const double until = k + 1 < samples.size() ? samples[k + 1].first : summary.wall_seconds * 1e6;
      area += static_cast<double>(samples[k].second) * std::max(0.0, until - samples[k].first);
    }
    s.mean_queue = summary.wall_seconds > 0 ? area / (summary.wall_seconds * 1e6) : 0;
    auto& d = durations[i];
    s.calls = d.size();
    if (d.empty() && flush_us[i] == 0) continue;
    double busy_us = flush_us[i];
    for (double v : d) busy_us += v;
    s.busy_seconds = busy_us / 1e6;
    if (!d.empty()) {
      double call_us = 0;
      for (double v : d) call_us += v;
      s.mean_ms = call_us / static_cast<double>(d.size()) / 1000.0;
      std::sort(d.begin(), d.end());
      const auto rank = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(d.size())));
      s.p95_ms = d[std::clamp<std::size_t>(rank, 1, d.size()) - 1] / 1000.0;
    }
    const int usable = s.concurrency > 0 ? s.concurrency : std::max<int>(1, static_cast<int>(threads[i].size()));
    s.utilisation = summary.wall_seconds > 0 ? s.busy_seconds / (summary.wall_seconds * usable) : 0;
    s.items_per_second = summary.wall_seconds > 0 ? static_cast<double>(s.items) / summary.wall_seconds : 0;
    if (s.utilisation > best) {
      best = s.utilisation;
      summary.bottleneck = s.id;
    }
  }
  return summary;
}

std::string format_trace_summary(const TraceSummary& summary) {
  std::ostringstream out;
  out << std::fixed << "trace summary (wall " << std::setprecision(3) << summary.wall_seconds << " s)\n";
  out << "  " << std::left << std::setw(20) << "stage" << std::right << std::setw(9) << "calls" << std::setw(10)
      << "items" << std::setw(10) << "busy s" << std::setw(8) << "util" << std::setw(11) << "mean ms" << std::setw(10)
      << "p95 ms" << std::setw(12) << "items/s" << std::setw(9) << "open s" << std::setw(8) << "queue" << '\n';
  for (const auto& s : summary.stages) {
    out << "  " << std::left << std::setw(20) << s.id << std::right << std::setw(9) << s.calls << std::setw(10) << s.items
        << std::setw(10) << std::setprecision(3) << s.busy_seconds << std::setw(7) << std::setprecision(0)
        << s.utilisation * 100 << "%" << std::setw(11) << std::setprecision(3) << s.mean_ms << std::setw(10) << s.p95_ms
        << std::setw(12) << std::setprecision(1) << s.items_per_second << std::setw(9) << std::setprecision(3)
        << s.startup_seconds << std::setw(8) << std::setprecision(1) << s.mean_queue << '\n';
  }
  // Start-up (constructing and opening stages, e.g. loading a model) happens before the first item moves.
  double startup = 0;
  const StageTraceSummary* slowest = nullptr;
  for (const auto& s : summary.stages) {
    startup += s.startup_seconds;
    if (!slowest || s.startup_seconds > slowest->startup_seconds) slowest = &s;
  }
  if (slowest && startup >= 0.001)
    out << "start-up: " << std::setprecision(3) << startup << " s creating and opening stages (slowest: " << slowest->id
        << ", " << slowest->startup_seconds << " s)\n";
  if (!summary.bottleneck.empty())
    out << "bottleneck: " << summary.bottleneck << " (highest utilisation of its available concurrency)\n";
  return out.str();
}

}  // namespace histoflow
