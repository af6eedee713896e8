#pragma once
// Packet kinds: what a packet of a kind carries (tensor dtype, rank and shape; attributes with their types),
// declared once by the owner of the kind and checked at validation (ports name declared kinds) and at
// emission (in debug and test builds, or with HISTOFLOW_CHECK_PACKETS=1), as GStreamer caps and MediaPipe's
// typed ports are. `flowrun describe KIND` prints a declaration.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/packet.hpp"
#include "histoflow/tensor.hpp"

namespace histoflow {

enum class AttributeType : std::uint8_t { Int, Float, Bool, String };
const char* attribute_type_name(AttributeType type);

struct AttributeSpec {
  // A name ending in ':' declares a family: "label:" covers "label:msi", "label:stage", ...
  std::string name;
  AttributeType type = AttributeType::String;
  std::string doc;
  bool required = false;
  bool is_family() const { return !name.empty() && name.back() == ':'; }
};

struct TensorSpec {
  std::vector<DType> dtypes;          // allowed dtypes; empty: any
  int rank = -1;                      // -1: any rank
  std::vector<std::int64_t> shape;    // per dimension, -1 for any extent; empty: not constrained
  bool rows_per_row_provenance = false;  // dimension 0 has one entry of Packet::rows per row
  std::string doc;                    // "uint8 [H, W, 3] RGB"
};

struct PacketKind {
  std::string name;
  std::string summary;   // one line
  std::string doc;       // longer text: who produces it, what consumers may rely on
  std::optional<TensorSpec> tensor;   // none: the packet carries no tensor (an empty one)
  std::vector<AttributeSpec> attributes;
  bool tile_provenance = false;       // provenance.tile is set (a region of a slide)
  std::string owner;                  // filled by the registry: the plugin file that declared it, or "framework"

  const AttributeSpec* find_attribute(const std::string& attribute) const;  // a family matches its members
};

// Everything wrong with `packet` as a packet of `kind`, one line each; empty when it conforms. Attributes the
// kind does not declare are allowed (a stage may pass more on), declared ones must have the declared type.
std::vector<std::string> packet_kind_problems(const PacketKind& kind, const Packet& packet);

// Whether emitted packets are checked against their kind: on in debug builds; HISTOFLOW_CHECK_PACKETS=1|0
// turns it on or off in any build (the test suite turns it on).
bool packet_checks_enabled();

// Human-readable description, for `flowrun describe KIND`.
std::string describe_kind(const PacketKind& kind);

// Builders that keep declarations short.
AttributeSpec required_attribute(std::string name, AttributeType type, std::string doc);
AttributeSpec optional_attribute(std::string name, AttributeType type, std::string doc);

// Kinds every plugin speaks, declared by the framework itself: pixels and feature rows.
namespace kinds {
inline constexpr const char* kTile = "tile";
inline constexpr const char* kFeatures = "features";
}  // namespace kinds

}  // namespace histoflow
