#pragma once
// What mil_cv takes from each "feature_file" packet: the slide's identity, label and cohort, and its
// features read from its file (a store's verified; CLAM's and TRIDENT's, from feature_reader, as they are).
// Problems that concern one slide become recorded skips.
#include <cstdint>
#include <string>
#include <vector>

#include "histoflow/packet.hpp"

namespace histoflow::mil {

struct SlideInput {
  std::string slide_id, patient, cohort, slide_path, feature_path;
  std::string label;                 // the manifest's value; empty when the slide has none
  std::string encoder, weights_sha256, output;
  std::int64_t rows = 0, dim = 0;
  std::vector<float> features;       // rows * dim
  std::vector<std::int64_t> coords;  // rows * 2
};

struct SkippedSlide {
  std::string slide_id;
  std::string reason;
};

// Reads the packet's attributes and its feature file in the packet's `format` (default: a store's file, checksum
// verified). Throws std::invalid_argument naming the slide and file when the packet lacks an attribute or the
// file fails to read or verify.
SlideInput read_slide_input(const Packet& packet, const std::string& label_column);

// Class names in index order: `explicit_order` when given (every label must be one of them), else the
// distinct labels sorted, numerically when all are integers ("0" < "1" < "10"). Throws listing the labels.
std::vector<std::string> class_names_for(const std::vector<std::string>& labels, const std::vector<std::string>& explicit_order);

}  // namespace histoflow::mil
