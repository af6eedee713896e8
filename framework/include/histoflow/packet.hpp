#pragma once
// Packets: the immutable, reference-counted unit that flows along graph edges.
#include <any>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "histoflow/tensor.hpp"

namespace histoflow {

// Where a packet came from: the source item (a slide, an image) and, for tiles, where in it.
struct TileCoord {
  std::int64_t x = 0;  // level-0 pixels
  std::int64_t y = 0;
  std::int32_t level = 0;
  std::int32_t size = 0;  // level-0 extent of the tile
  bool operator==(const TileCoord&) const = default;
};

struct Provenance {
  std::string item_id;        // e.g. the slide id; empty for aggregates that span items
  std::uint64_t sequence = 0; // position of the source item in its source's stream
  std::optional<TileCoord> tile;
};

using Attribute = std::variant<std::int64_t, double, bool, std::string>;

struct Packet;
using PacketPtr = std::shared_ptr<const Packet>;

// Built by a stage, then published as PacketPtr: after that nobody changes it.
struct Packet {
  std::string kind;                           // must match the stage contract's output port kind
  Provenance provenance;
  Tensor tensor;                              // main payload (pixels, features, ...)
  std::map<std::string, Attribute> attributes;// small typed metadata (label, mpp, count, ...)
  std::vector<PacketPtr> members;             // a batch: the packets it was built from, in order
  std::vector<Provenance> rows;               // a batched result: provenance of each row of `tensor`
  // A batched result: per-row attributes that downstream stages need (a patch's label and path), when kept.
  std::vector<std::map<std::string, Attribute>> row_attributes;
  std::any object;                            // stage-specific payload that is neither tensor nor attribute

  template <typename T> const T* attribute(const std::string& name) const {
    auto it = attributes.find(name);
    return it == attributes.end() ? nullptr : std::get_if<T>(&it->second);
  }
  // The attribute a stage cannot work without: throws naming the item and the attribute when it is absent
  // or of another type (a producer from another plugin that does not follow the kind's convention).
  template <typename T> const T& require(const std::string& name) const {
    if (const T* value = attribute<T>(name)) return *value;
    throw std::invalid_argument("packet of kind '" + kind + "' for item '" + provenance.item_id + "' has no " +
                                (attributes.count(name) ? "attribute '" + name + "' of the expected type"
                                                        : "attribute '" + name + "'"));
  }
  template <typename T> const T* object_as() const { return std::any_cast<T>(&object); }
};

inline PacketPtr make_packet(Packet packet) { return std::make_shared<const Packet>(std::move(packet)); }

// What a patch dataset's rows need downstream (label index, class name, image path).
inline const std::vector<std::string> kDefaultRowAttributes{"label", "class", "path"};

// A batched result (one row per member): sets result.rows to the members' provenance and, when any member
// carries one of `kept`, result.row_attributes to those attributes of each member.
void set_rows_from(const std::vector<PacketPtr>& members, Packet& result,
                   const std::vector<std::string>& kept = kDefaultRowAttributes);

}  // namespace histoflow
