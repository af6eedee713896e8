#pragma once
// The rules every emitted packet must follow, checked in one place for the runtime and the stage harness:
// a declared output port, the port's packet kind, at most one packet per input for one-to-one stages and,
// when packet checks are on (debug and test builds), what the kind's declaration promises.
#include <stdexcept>
#include <string>

#include "histoflow/contract.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/packet.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::detail {

// `emitted_before`: packets this call already emitted; `for_one_input`: the call processes one input packet
// (not a source's generate() or an end-of-stream flush).
inline void check_emission(const StageContract& contract, const PacketPtr& packet, std::size_t port,
                           std::size_t emitted_before, bool for_one_input) {
  const auto& outputs = contract.outputs;
  if (port >= outputs.size())
    throw std::logic_error("stage emitted on output port " + std::to_string(port) + ", but its contract declares " +
                           std::to_string(outputs.size()));
  if (!packet) throw std::logic_error("stage emitted a null packet");
  if (packet->kind != outputs[port].kind)
    throw std::logic_error("stage emitted a packet of kind '" + packet->kind + "' on output '" + outputs[port].name +
                           "', whose contract kind is '" + outputs[port].kind + "'");
  static const bool check_kinds = packet_checks_enabled();
  if (check_kinds) {
    if (const PacketKind* kind = Registry::instance().find_kind(packet->kind)) {
      if (const auto problems = packet_kind_problems(*kind, *packet); !problems.empty()) {
        std::string text;
        for (const auto& problem : problems) text += (text.empty() ? "" : "; ") + problem;
        throw std::logic_error("stage emitted a packet on output '" + outputs[port].name + "' that breaks its kind '" +
                               packet->kind + "' (`flowrun describe " + packet->kind + "`): " + text);
      }
    }
  }
  if (for_one_input && contract.cardinality == Cardinality::OneToOne && emitted_before > 0)
    throw std::logic_error("stage declared one-to-one emitted a second packet for one input");
}

}  // namespace histoflow::detail
