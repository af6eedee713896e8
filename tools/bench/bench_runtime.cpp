// Runtime overhead benchmark: a million tiny items through source -> map -> batched sink, with the tracer
// off and on. Prints items per second, microseconds per item and operator-new calls per item, so the
// cost of the framework itself (and of tracing) is visible. Run: build/bin/bench_runtime [items] [threads]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>

#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/runtime.hpp"

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
using namespace histoflow;

class CountingSource final : public Stage {
 public:
  explicit CountingSource(const StageContext& c) : count_(c.params.get_int("count")) {}
  bool generate(Emitter& out) override {
    Packet p;
    p.kind = "n";
    p.provenance.sequence = static_cast<std::uint64_t>(next_);
    out.emit(std::move(p));
    return ++next_ < count_;
  }

 private:
  std::int64_t count_, next_ = 0;
};

class Forward final : public Stage {
 public:
  explicit Forward(const StageContext&) {}
  void process(const PacketPtr& in, std::size_t, Emitter& out) override { out.emit(in); }
};

class Discard final : public Stage {
 public:
  explicit Discard(const StageContext&) {}
  void process(const PacketPtr&, std::size_t, Emitter&) override {}
};

void register_bench_stages() {
  auto& r = Registry::instance();
  StageContract source{.type = "bench_source", .summary = "counts"};
  source.outputs = {{"n", "n", ""}};
  source.params = {param_int("count", 1000, "items", 0, 1e12)};
  register_stage<CountingSource>(r, source);
  StageContract forward{.type = "bench_forward", .summary = "forwards"};
  forward.inputs = {{"n", "n", ""}};
  forward.outputs = {{"n", "n", ""}};
  forward.concurrency = Concurrency::Unlimited;
  forward.cardinality = Cardinality::OneToOne;
  register_stage<Forward>(r, forward);
  StageContract sink{.type = "bench_sink", .summary = "discards"};
  sink.inputs = {{"n", "n", ""}};
  sink.batched = true;
  register_stage<Discard>(r, sink);
}

struct Figures {
  double seconds;
  double allocations_per_item;
};

Figures run_once(const GraphSpec& spec, const std::filesystem::path& trace, std::int64_t items) {
  RunOptions options;
  options.progress = ProgressMode::Off;
  options.write_outputs = false;
  options.trace_file = trace;
  const auto before = allocations.load();
  const auto start = std::chrono::steady_clock::now();
  const RunResult result = run_graph(spec, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (result.status != RunStatus::Completed) {
    std::fprintf(stderr, "benchmark run failed: %s\n", result.fatal_message.c_str());
    std::exit(1);
  }
  return {seconds, static_cast<double>(allocations.load() - before) / static_cast<double>(items)};
}
}  // namespace

int main(int argc, char** argv) {
  const std::int64_t items = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const std::int64_t threads = argc > 2 ? std::atoll(argv[2]) : 2;
  register_bench_stages();
  const auto folder = std::filesystem::temp_directory_path() / "histoflow-bench-runtime";
  const std::string text = "schema_version = 1\n[experiment]\nname = \"bench\"\noutput = \"" + folder.string() +
                           "\"\n[run]\nmax_in_flight = 256\nthreads = " + std::to_string(threads) +
                           "\n[stage.src]\nuse = \"bench_source\"\ncount = " + std::to_string(items) +
                           "\n[stage.fwd]\nuse = \"bench_forward\"\ninput = \"src\"\n"
                           "[stage.sink]\nuse = \"bench_sink\"\ninput = \"fwd\"\nbatch = 32\n";
  PluginLoader no_plugins;
  const GraphLoad load = load_graph_text(text, "bench.toml", {}, no_plugins);
  if (!load.ok()) {
    for (const auto& d : load.diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
    return 2;
  }
  run_once(load.spec, {}, items);  // warm-up: thread pool, allocator
  const Figures off = run_once(load.spec, {}, items);
  const Figures on = run_once(load.spec, folder / "trace.json", items);
  std::printf("runtime overhead: %lld items, source -> forward -> batched sink (batch 32), %lld threads\n",
              static_cast<long long>(items), static_cast<long long>(threads));
  std::printf("%-12s %12s %14s %18s\n", "tracer", "items/s", "us per item", "new() per item");
  for (const auto& [name, f] : {std::pair{"off", off}, std::pair{"on", on}})
    std::printf("%-12s %12.0f %14.3f %18.2f\n", name, static_cast<double>(items) / f.seconds,
                f.seconds * 1e6 / static_cast<double>(items), f.allocations_per_item);
  std::printf("tracing cost: %+.1f%% time\n", (on.seconds / off.seconds - 1.0) * 100.0);
  std::filesystem::remove_all(folder);
  return 0;
}
