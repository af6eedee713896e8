// Chrome trace event JSON (opens in Perfetto and chrome://tracing). Events go into per-thread buffers,
// so recording takes no lock; the buffers are merged when the file is written.
#include "histoflow/tracer.hpp"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/version.hpp"

namespace histoflow {

struct Tracer::Event {
  enum class Kind : std::uint8_t { Span, Queue, Backlog };
  Kind kind = Kind::Span;
  Phase phase = Phase::Call;
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
  local_buffer().events.push_back(
      {Event::Kind::Span, Phase::Call, static_cast<std::uint32_t>(stage), ns(begin), ns(end), batch_size, std::move(items)});
}

void Tracer::phase_span(std::size_t stage, Clock::time_point begin, Clock::time_point end, Phase phase) {
  const auto ns = [&](Clock::time_point t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t - start_).count(); };
  local_buffer().events.push_back({Event::Kind::Span, phase, static_cast<std::uint32_t>(stage), ns(begin), ns(end), 0, {}});
}

void Tracer::counter(std::size_t stage, std::int64_t queue_depth) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  local_buffer().events.push_back({Event::Kind::Queue, Phase::Call, static_cast<std::uint32_t>(stage), now, now, queue_depth, {}});
}

void Tracer::backlog(std::size_t stage, std::int64_t waiting) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  local_buffer().events.push_back({Event::Kind::Backlog, Phase::Call, static_cast<std::uint32_t>(stage), now, now, waiting, {}});
}

void Tracer::finish() { end_ = Clock::now(); }

namespace {

// Writes a JSON string literal; item ids come from file names, so anything may be in them.
void write_json_string(std::ostream& out, const std::string& text) {
  out << '"';
  for (const char c : text) {
    switch (c) {
      case '"': out << "\\\""; break;
      case '\\': out << "\\\\"; break;
      case '\n': out << "\\n"; break;
      case '\t': out << "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out << escaped;
        } else {
          out << c;
        }
    }
  }
  out << '"';
}

const char* phase_name(Tracer::Phase phase) {
  switch (phase) {
    case Tracer::Phase::Create: return "create";
    case Tracer::Phase::Open: return "open";
    case Tracer::Phase::Flush: return "flush";
    case Tracer::Phase::Close: return "close";
    case Tracer::Phase::Call: break;
  }
  return "call";
}

}  // namespace

// Streams the events straight to the file: millions of events must not become a DOM in memory first.
void Tracer::write(const std::filesystem::path& file) const {
  AtomicFile atomic(file);
  std::ostream& out = atomic.stream();
  out << std::fixed << std::setprecision(3);
  out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  out << R"({"ph":"M","pid":1,"tid":0,"name":"process_name","args":{"name":"flowrun"}})";
  std::lock_guard lock(mutex_);
  for (const auto& buffer : buffers_) {
    const auto tid = buffer->thread_index;
    out << ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":" << tid << R"(,"name":"thread_name","args":{"name":"thread )" << tid
        << "\"}}";
    for (const auto& e : buffer->events) {
      const StageInfo& stage = stages_.at(e.stage);
      const double ts = static_cast<double>(e.begin_ns) / 1000.0;
      if (e.kind == Event::Kind::Span) {
        out << ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":" << tid << ",\"name\":";
        write_json_string(out, stage.id);
        out << ",\"cat\":";
        write_json_string(out, stage.type);
        out << ",\"ts\":" << ts << ",\"dur\":" << static_cast<double>(e.end_ns - e.begin_ns) / 1000.0 << ",\"args\":{";
        if (e.phase != Phase::Call) {
          out << "\"phase\":\"" << phase_name(e.phase) << "\"}}";
        } else {
          out << "\"items\":";
          write_json_string(out, e.items);
          out << ",\"batch\":" << e.value << "}}";
        }
      } else {
        out << ",\n{\"ph\":\"C\",\"pid\":1,\"tid\":" << tid << ",\"name\":";
        const bool queue = e.kind == Event::Kind::Queue;
        write_json_string(out, (queue ? "queue " : "tile backlog ") + stage.id);
        out << ",\"ts\":" << ts << ",\"args\":{\"" << (queue ? "depth" : "waiting") << "\":" << e.value << "}}";
      }
    }
  }
  std::vector<const StageInfo*> ordered;
  for (const auto& s : stages_) ordered.push_back(&s);
  std::stable_sort(ordered.begin(), ordered.end(), [](const StageInfo* a, const StageInfo* b) { return a->rank < b->rank; });
  out << "\n],\"histoflow\":{\"version\":";
  write_json_string(out, kVersion);
  out << ",\"wall_us\":" << std::chrono::duration<double, std::micro>(end_ - start_).count() << ",\"stages\":[";
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    out << (i ? "," : "") << "{\"id\":";
    write_json_string(out, ordered[i]->id);
    out << ",\"type\":";
    write_json_string(out, ordered[i]->type);
    out << ",\"concurrency\":" << ordered[i]->concurrency << "}";
  }
  out << "]}}\n";
  atomic.commit();
}

}  // namespace histoflow
