// Batches are a framework facility: one packet whose members are the batched packets, in arrival order.
#include <stdexcept>

#include "histoflow/harness.hpp"

namespace histoflow {

PacketPtr make_batch(const std::vector<PacketPtr>& members) {
  if (members.empty()) throw std::invalid_argument("make_batch: a batch needs at least one packet");
  Packet batch;
  batch.kind = members.front()->kind;
  batch.provenance.sequence = members.front()->provenance.sequence;
  batch.members = members;
  return make_packet(std::move(batch));
}

}  // namespace histoflow
