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
  explicit StageHarness(const std::string& snippet, std::filesystem::path output_dir = {}, std::uint64_t seed = 0);
  ~StageHarness();

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
  std::vector<PacketPtr> flush();
  void close();

  // Port of each packet returned by the last call.
  const std::vector<std::size_t>& ports() const { return ports_; }

 private:
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
