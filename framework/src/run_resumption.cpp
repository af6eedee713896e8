// Resumption (see Stage::restore): before a source item enters the graph, the resumable stages behind it
// may restore their results for it; upstream stages that work only for those results then skip it. Before that,
// the item is locked, so that of several processes sharing the output folder only one computes it.
#include <bit>

#include "histoflow/item_lock.hpp"

#include "run.hpp"

namespace histoflow::detail {

// For every stage, the first resumable stages downstream and whether other work depends on it: a stage
// may skip an input when all of those stages restored the input's item and nothing else needs it.
void Run::plan_resumption() {
  for (auto& node : nodes_) {
    node->port_resumable.assign(node->successors.size(), 0);
    if (!node->contract.resumable) continue;
    if (resumable_.size() == 64) throw FatalError("a graph can have at most 64 resumable stages");
    node->resumable_bit = std::uint64_t{1} << resumable_.size();
    resumable_.push_back(node.get());
  }
  for (auto it = spec_.topo_order.rbegin(); it != spec_.topo_order.rend(); ++it) {
    StageNode& node = *nodes_[*it];
    bool has_successor = false;
    for (std::size_t port = 0; port < node.successors.size(); ++port)
      for (const auto& [target, target_port] : node.successors[port]) {
        has_successor = true;
        node.port_resumable[port] |= target->downstream_resumable;
        node.feeds_other_work = node.feeds_other_work || target->feeds_other_work;
      }
    if (node.resumable_bit) {
      node.downstream_resumable = node.resumable_bit;
      node.feeds_other_work = false;
    } else {
      for (const auto mask : node.port_resumable) node.downstream_resumable |= mask;
      if (!has_successor) node.feeds_other_work = true;  // a sink: its work is the point
    }
  }
}

std::uint64_t Run::restore_item(StageNode& source, std::size_t port, const Envelope& item) {
  std::uint64_t restored = 0;
  for (std::uint64_t mask = source.port_resumable[port]; mask != 0; mask &= mask - 1) {
    StageNode& stage = *resumable_[static_cast<std::size_t>(std::countr_zero(mask))];
    Envelope input = item;
    NodeEmitter emitter(stage, &input);
    try {
      if (stage.stage->restore(*item.packet, emitter)) {
        restored |= stage.resumable_bit;
        stage.restored.fetch_add(1);
      }
    } catch (const std::exception& e) {  // the item is then computed again
      record_error(stage, item.packet.get(), item.sequence, std::string("cannot restore, recomputing: ") + e.what());
    }
  }
  return restored;
}

std::optional<ItemLock> Run::lock_item(StageNode& source, const Packet& item) {
  const std::string& id = item.provenance.item_id;
  std::string holder;
  auto lock = ItemLock::try_acquire(item_lock_file(spec_.experiment.output_dir / "locks", source.spec.id, id), &holder);
  if (!lock) {
    // A stage that needs every item must not go on without this one: the run stops, keeping what it finished.
    for (const auto& stage : spec_.stages)
      if (stage.contract->needs_every_item)
        throw FatalError("item '" + id + "' is being computed by another process (" + holder + ") and stage '" + stage.id + "' (" +
                         stage.type + ") needs every item: run this again once that process has finished (finished items are kept)");
    source.left_to_others.fetch_add(1);
    errors.warn({source.spec.id, id, 0,
                 "left to another process that is working on it (" + holder + "); a rerun restores its result"});
  }
  return lock;
}

}  // namespace histoflow::detail
