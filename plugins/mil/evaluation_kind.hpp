#pragma once
// The "evaluation" packet kind: one result of one method in one setting, fed to comparison_table.
// Attributes: encoder (the table row), method, setting, output_dir, and per metric m: mean:<m>, and where
// they apply sd:<m>, ci_low:<m>, ci_high:<m> (doubles).
namespace histoflow::mil {

inline constexpr const char* kEvaluationKind = "evaluation";
inline constexpr const char* kFeatureFileKind = "feature_file";

}  // namespace histoflow::mil
