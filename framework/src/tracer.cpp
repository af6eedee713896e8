// Chrome trace event JSON (opens in Perfetto and chrome://tracing). Events go into per-thread buffers,
// so recording takes no lock; the buffers are merged when the file is written.
#include "histoflow/tracer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/version.hpp"

namespace histoflow {

struct Tracer::Event {
  bool is_span = true;
  std::uint32_t stage = 0;
  std::int64_t begin_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t value = 0;  // batch size for spans, queue depth for counters
  std::string items;
};

struct Tracer::ThreadBuffer {
  std::uint32_t thread_index = 0;
  std::vector<Event> events;
};

namespace {
std::atomic<std::uint64_t> next_tracer_id{1};
struct LocalBufferCache {
  std::uint64_t tracer_id = 0;
  void* buffer = nullptr;
};
thread_local LocalBufferCache local_cache;
}  // namespace

Tracer::Tracer(std::vector<StageInfo> stages)
    : stages_(std::move(stages)), start_(Clock::now()), end_(start_), id_(next_tracer_id.fetch_add(1)) {}

Tracer::~Tracer() = default;

Tracer::ThreadBuffer& Tracer::local_buffer() {
  if (local_cache.tracer_id == id_) return *static_cast<ThreadBuffer*>(local_cache.buffer);
  std::lock_guard lock(mutex_);
  buffers_.push_back(std::make_unique<ThreadBuffer>());
  buffers_.back()->thread_index = next_thread_index_.fetch_add(1) + 1;
  buffers_.back()->events.reserve(4096);
  local_cache = {id_, buffers_.back().get()};
  return *buffers_.back();
}

void Tracer::span(std::size_t stage, Clock::time_point begin, Clock::time_point end, std::string items,
                  std::int64_t batch_size) {
  const auto ns = [&](Clock::time_point t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t - start_).count(); };
  local_buffer().events.push_back({true, static_cast<std::uint32_t>(stage), ns(begin), ns(end), batch_size, std::move(items)});
}

void Tracer::counter(std::size_t stage, std::int64_t queue_depth) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  local_buffer().events.push_back({false, static_cast<std::uint32_t>(stage), now, now, queue_depth, {}});
}

void Tracer::finish() { end_ = Clock::now(); }

void Tracer::write(const std::filesystem::path& file) const {
  using nlohmann::json;
  json events = json::array();
  events.push_back({{"ph", "M"}, {"pid", 1}, {"tid", 0}, {"name", "process_name"}, {"args", {{"name", "flowrun"}}}});
  std::lock_guard lock(mutex_);
  for (const auto& buffer : buffers_) {
    events.push_back({{"ph", "M"},
                      {"pid", 1},
                      {"tid", buffer->thread_index},
                      {"name", "thread_name"},
                      {"args", {{"name", "thread " + std::to_string(buffer->thread_index)}}}});
    for (const auto& e : buffer->events) {
      const StageInfo& stage = stages_.at(e.stage);
      if (e.is_span) {
        events.push_back({{"ph", "X"},
                          {"pid", 1},
                          {"tid", buffer->thread_index},
                          {"name", stage.id},
                          {"cat", stage.type},
                          {"ts", static_cast<double>(e.begin_ns) / 1000.0},
                          {"dur", static_cast<double>(e.end_ns - e.begin_ns) / 1000.0},
                          {"args", e.value < 0 ? json{{"phase", "flush"}} : json{{"items", e.items}, {"batch", e.value}}}});
      } else {
        events.push_back({{"ph", "C"},
                          {"pid", 1},
                          {"tid", buffer->thread_index},
                          {"name", "queue " + stage.id},
                          {"ts", static_cast<double>(e.begin_ns) / 1000.0},
                          {"args", {{"depth", e.value}}}});
      }
    }
  }
  std::vector<const StageInfo*> ordered;
  for (const auto& s : stages_) ordered.push_back(&s);
  std::stable_sort(ordered.begin(), ordered.end(), [](const StageInfo* a, const StageInfo* b) { return a->rank < b->rank; });
  json stages = json::array();
  for (const auto* s : ordered) stages.push_back({{"id", s->id}, {"type", s->type}, {"concurrency", s->concurrency}});
  json document = {{"traceEvents", std::move(events)},
                   {"displayTimeUnit", "ms"},
                   {"histoflow",
                    {{"version", kVersion},
                     {"wall_us", std::chrono::duration<double, std::micro>(end_ - start_).count()},
                     {"stages", std::move(stages)}}}};
  write_file_atomically(file, document.dump() + "\n");
}

}  // namespace histoflow
