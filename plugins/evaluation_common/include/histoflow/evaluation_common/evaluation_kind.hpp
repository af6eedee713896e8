#pragma once
// The "evaluation" packet kind: one result of one method in one setting for one encoder. The evaluation
// stages (mil_cv, knn_eval, linear_probe, ...) write it with evaluation_packet, comparison_table reads it with
// evaluation_record_of, and the comparison plugin registers the declaration: one place for all three.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "histoflow/evaluation_common/comparison_table.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/packet.hpp"

namespace histoflow::evaluation_common {

inline constexpr const char* kEvaluationKind = "evaluation";

PacketKind evaluation_kind();

// `record.source` is the producing stage's id; `output_dir` the folder of its reports; `counts` extra whole
// numbers worth keeping with the result (train_rows, test_rows).
PacketPtr evaluation_packet(const EvaluationRecord& record, const std::filesystem::path& output_dir,
                            const std::map<std::string, std::int64_t>& counts = {});

// Throws std::invalid_argument naming the encoder and method when the packet has no mean:<metric>.
EvaluationRecord evaluation_record_of(const Packet& packet);

}  // namespace histoflow::evaluation_common
