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

void set_rows_from(const std::vector<PacketPtr>& members, Packet& result, const std::vector<std::string>& kept) {
  result.rows.clear();
  result.rows.reserve(members.size());
  for (const auto& m : members) result.rows.push_back(m->provenance);
  result.row_attributes.clear();
  for (std::size_t i = 0; i < members.size(); ++i)
    for (const auto& name : kept)
      if (auto it = members[i]->attributes.find(name); it != members[i]->attributes.end()) {
        result.row_attributes.resize(members.size());
        result.row_attributes[i].emplace(name, it->second);
      }
}

}  // namespace histoflow
