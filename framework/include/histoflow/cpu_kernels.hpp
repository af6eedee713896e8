#pragma once
// ATen's widest CPU kernels. ATen 1.13 dispatches its element-wise, reduction and normalisation kernels to AVX2
// even on CPUs with AVX-512 unless ATEN_CPU_CAPABILITY says otherwise, which it reads at its first kernel call.
// (OpenBLAS chooses its own kernels by CPU model and honours OPENBLAS_CORETYPE; that is left to it and the user.)
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace histoflow {

// The variable to set, if any: ATEN_CPU_CAPABILITY=avx512 when the CPU runs AVX-512 F, CD, BW, DQ and VL and
// neither ATEN_CPU_CAPABILITY nor HISTOFLOW_CPU_KERNELS=default is set (the user's choice wins).
std::optional<std::pair<std::string, std::string>> choose_cpu_kernels(
    bool has_avx512, const std::function<std::optional<std::string>(const std::string&)>& get_env);

// Call first in main, before any LibTorch work.
void use_widest_cpu_kernels();

}  // namespace histoflow
