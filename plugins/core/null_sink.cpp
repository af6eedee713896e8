// Consumes packets of any kind and keeps nothing: the end of a graph that is run for its timing.
#include <atomic>

#include "core_stages.hpp"

namespace histoflow::core {
namespace {

class NullSink final : public Stage {
 public:
  explicit NullSink(const StageContext&) {}
  void process(const PacketPtr&, std::size_t, Emitter&) override {}
};

}  // namespace

void register_null_sink(Registry& registry) {
  StageContract c;
  c.type = "null_sink";
  c.summary = "Discards every packet (for benchmarks and dry runs; its call count is in the run summary)";
  c.inputs = {{"items", kAnyKind, "packets of any kind"}};
  c.concurrency = Concurrency::Unlimited;
  c.example = "[stage.discard]\nuse = \"null_sink\"\ninput = \"read\"\n";
  register_stage<NullSink>(registry, std::move(c));
}

}  // namespace histoflow::core
