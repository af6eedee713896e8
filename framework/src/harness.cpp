// The stage harness: one stage, validated exactly as in a graph, driven by hand.
#include "histoflow/harness.hpp"

#include <atomic>
#include <mutex>
#include <sstream>

#include "emission_check.hpp"
#include "lineage.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"

namespace histoflow {
namespace {

class CollectingEmitter final : public Emitter {
 public:
  CollectingEmitter(const StageContract& contract, std::vector<PacketPtr>& out, std::vector<std::size_t>& ports,
                    bool one_input)
      : contract_(contract), out_(out), ports_(ports), one_input_(one_input) {}
  void emit(PacketPtr packet, std::size_t port) override {
    // The runtime's own rules: a stage that breaks them fails its harness tests, not only a real run.
    detail::check_emission(contract_, packet, port, emitted_, one_input_);
    ++emitted_;
    out_.push_back(std::move(packet));
    ports_.push_back(port);
  }

 private:
  const StageContract& contract_;
  std::vector<PacketPtr>& out_;
  std::vector<std::size_t>& ports_;
  bool one_input_;  // emissions for a single input (not a source, not a flush)
  std::size_t emitted_ = 0;
};

// A stage alone has no progress line: what it reports is dropped.
class NoProgress final : public StageProgress {
 public:
  void report(const std::string&, double) override {}
};
NoProgress no_progress;

}  // namespace

// In the harness a request to end the input stops generate_all and is visible to the test.
class HarnessStream final : public StreamControl {
 public:
  void end_sources(const std::string& reason) override {
    if (!ended_) reason_ = reason;
    ended_ = true;
  }
  bool sources_ended() const override { return ended_; }
  bool cancelled() const override { return cancelled_.load(); }
  void cancel() { cancelled_.store(true); }
  const std::string& reason() const { return reason_; }

 private:
  std::atomic<bool> cancelled_{false};  // may be read by a stage's own threads
  bool ended_ = false;
  std::string reason_;
};

StageHarness::StageHarness(const std::string& snippet, std::filesystem::path output_dir, std::uint64_t seed, RunShard shard) {
  if (output_dir.empty()) output_dir = std::filesystem::temp_directory_path() / "histoflow-harness";
  // The snippet is validated as a one-stage graph, so parameters are checked exactly as in a real run.
  std::ostringstream graph;
  graph << "schema_version = 1\n[experiment]\nname = \"harness\"\noutput = " << value_to_string(output_dir.string())
        << "\nseed = " << seed << "\n[stage.under_test]\n" << snippet << "\n";
  PluginLoader no_plugins;
  GraphLoad load = load_graph_text(graph.str(), "harness.toml", {}, no_plugins, Validation::StagesOnly);
  std::string problems;
  for (const auto& d : load.diagnostics) problems += d.format() + "\n";
  if (!problems.empty()) throw UsageError("stage harness: invalid stage snippet:\n" + problems);
  const StageSpec& spec = load.spec.stages.at(0);
  contract_ = spec.contract;
  stream_ = std::make_unique<HarnessStream>();
  context_ = StageContext{"under_test", contract_, Params(spec.params), load.spec.experiment, &errors_, &no_progress, stream_.get(), shard};
  stage_ = Registry::instance().create(spec.type, context_);
  stage_->open();
  stage_->set_lineage(detail::stage_lineage(spec.type, *contract_, spec.params, stage_->identity(), {}));
}

StageHarness::~StageHarness() {
  if (!closed_ && stage_) {
    try {
      stage_->close();
    } catch (...) {
    }
  }
}

std::vector<PacketPtr> StageHarness::push(const PacketPtr& input, std::size_t port) {
  std::vector<PacketPtr> out;
  ports_.clear();
  CollectingEmitter emitter(*contract_, out, ports_, true);
  stage_->process(input, port, emitter);
  return out;
}

std::vector<PacketPtr> StageHarness::push_batch(const std::vector<PacketPtr>& members) { return push(make_batch(members)); }

StageHarness::Generated StageHarness::generate_one() {
  Generated result;
  ports_.clear();
  CollectingEmitter emitter(*contract_, result.packets, ports_, false);
  result.more = stage_->generate(emitter);
  return result;
}

std::vector<PacketPtr> StageHarness::generate_all() {
  std::vector<PacketPtr> out;
  std::vector<std::size_t> ports;
  ports_.clear();
  CollectingEmitter emitter(*contract_, out, ports, false);
  while (!stream_->sources_ended() && stage_->generate(emitter)) {
  }
  ports_ = ports;
  return out;
}

std::string StageHarness::sources_ended() const { return stream_->reason(); }

std::vector<std::string> StageHarness::shard_items() const { return stage_->shard_items(); }

void StageHarness::cancel() { stream_->cancel(); }

std::vector<PacketPtr> StageHarness::flush() {
  std::vector<PacketPtr> out;
  ports_.clear();
  CollectingEmitter emitter(*contract_, out, ports_, false);
  stage_->flush(emitter);
  return out;
}

void StageHarness::load_plugin(const std::filesystem::path& file) {
  static std::mutex mutex;
  static PluginLoader loader;  // plugins stay loaded for the life of the process, as in flowrun
  std::lock_guard lock(mutex);
  const auto canonical = std::filesystem::weakly_canonical(file);
  const Registry& registry = Registry::instance();
  const auto is_this_file = [&](const std::string& owner) {
    return !owner.empty() && std::filesystem::weakly_canonical(owner) == canonical;
  };
  for (const auto& type : registry.types())
    if (is_this_file(registry.find(type)->plugin_file)) return;
  for (const auto& entry : registry.entries())
    if (is_this_file(entry.plugin_file)) return;
  for (const auto& kind : registry.kind_names())
    if (is_this_file(registry.find_kind(kind)->owner)) return;
  loader.load_file(canonical);
}

StageHarness::Restored StageHarness::restore(const PacketPtr& source_item) {
  if (!contract_->resumable)
    throw std::logic_error("stage harness: '" + contract_->type + "' is not resumable, so it has nothing to restore");
  Restored result;
  ports_.clear();
  CollectingEmitter emitter(*contract_, result.packets, ports_, false);
  result.restored = stage_->restore(*source_item, emitter);
  return result;
}

void StageHarness::close() {
  closed_ = true;
  stage_->close();
}

}  // namespace histoflow
