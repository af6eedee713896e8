#pragma once
// Runs one stage in isolation: build it from a TOML snippet, push packets, pull what it emitted.
//
//   StageHarness h(R"(use = "color_stats"
//                     batch = 4)");
//   auto out = h.push(tile_batch);   // vector<PacketPtr> emitted for this input
//   auto rest = h.flush();
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "histoflow/errors.hpp"
#include "histoflow/packet.hpp"
#include "histoflow/stage.hpp"

namespace histoflow {

class StageHarness {
 public:
  // `snippet` holds the body of a [stage.x] table. Throws UsageError listing every validation problem.
  // `shard`: the part of the input a shardable source emits (flowrun run --shard).
  explicit StageHarness(const std::string& snippet, std::filesystem::path output_dir = {}, std::uint64_t seed = 0,
                        RunShard shard = {});
  ~StageHarness();

  // Loads one plugin file (e.g. the plugin a test is about), once per process: a file that any loader has
  // loaded already is left alone. Throws std::runtime_error when the file is not a loadable plugin.
  static void load_plugin(const std::filesystem::path& file);

  const StageContract& contract() const { return *contract_; }
  const Params& params() const { return context_.params; }
  ErrorLog& errors() { return errors_; }

  std::vector<PacketPtr> push(const PacketPtr& input, std::size_t port = 0);
  // For batched stages: wraps `members` into one batch packet, as the framework's batcher does.
  std::vector<PacketPtr> push_batch(const std::vector<PacketPtr>& members);
  struct Generated {
    std::vector<PacketPtr> packets;
    bool more = false;  // what generate() returned
  };
  Generated generate_one();               // sources: one generate() call; exceptions propagate
  std::vector<PacketPtr> generate_all();  // sources: every packet until exhausted
  std::vector<std::string> shard_items() const;  // shardable sources: Stage::shard_items()
  std::vector<PacketPtr> flush();
  // Why the stage ended the input (StreamControl::end_sources); empty when it did not. generate_all stops then.
  std::string sources_ended() const;
  // Cancels the run as SIGTERM does under flowrun: from now on StreamControl::cancelled() is true, and long work
  // that calls throw_if_cancelled throws RunCancelled (from push or flush; the harness lets it propagate).
  void cancel();
  void close();

  // Resumable stages: what a rerun does before `source_item` enters the graph. A harness built from the same
  // snippet and output folder as an earlier one has the same lineage, so it finds what that one finished.
  struct Restored {
    bool restored = false;  // what restore() returned: the item's result exists and was emitted
    std::vector<PacketPtr> packets;
  };
  Restored restore(const PacketPtr& source_item);

  // Port of each packet returned by the last call.
  const std::vector<std::size_t>& ports() const { return ports_; }

 private:
  std::unique_ptr<class HarnessStream> stream_;  // before the stage, which may hold its address
  const StageContract* contract_ = nullptr;
  StageContext context_;
  ErrorLog errors_;
  std::unique_ptr<Stage> stage_;
  std::vector<std::size_t> ports_;
  bool closed_ = false;
};

// What the framework's batcher produces from a list of packets.
PacketPtr make_batch(const std::vector<PacketPtr>& members);

}  // namespace histoflow
