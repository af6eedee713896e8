#pragma once
// Linear layers on the CPU's fastest fp32 matrix product. LibTorch runs fp32 products on BLAS (OpenBLAS here),
// which reaches half of oneDNN's rate on AVX-512 CPUs and a sixth of it for the DINO head's 65,536-prototype layer
// (docs/encoders.md, "Matrix products"); bf16 products already go to oneDNN inside LibTorch. Where histoflow was
// built with oneDNN (libdnnl-dev: the library Debian's LibTorch itself uses), fp32 CPU products go through
// dnnl_sgemm on LibTorch's thread count; anything else (other types, GPUs, under autocast, a build without it, or
// HISTOFLOW_CPU_GEMM=aten) goes to LibTorch as before.
#include <torch/torch.h>

namespace histoflow::torch_encoders {

// Whether fp32 CPU products go to oneDNN: built with it and not switched off with HISTOFLOW_CPU_GEMM=aten (read
// once per process).
bool onednn_products_enabled();

// x W^T + b for x [..., K], weight [N, K], bias [N] or undefined: torch::nn::functional::linear, differentiable in
// every argument, with oneDNN's product for fp32 CPU tensors.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// x W^T with bf16 products accumulated and returned in fp32, for x in bf16 and an fp32 weight [N, K] (no bias): the
// DINO head's prototype layer, whose [rows, 65,536] outputs go straight into fp32 losses. On oneDNN it runs as one
// bf16 x bf16 -> fp32 product (LibTorch's bf16 product reaches a sixth of that rate on this shape, then the output
// is cast again); the weight's gradient comes back in fp32 unrounded. Elsewhere: LibTorch's bf16 product, cast.
// For fp32 x it is linear(x, weight).
torch::Tensor linear_to_fp32(const torch::Tensor& x, const torch::Tensor& weight);

// rows [M, K] x weight [N, K]^T added into out [M, N] in place (no gradient): the inference path's residual update.
void add_product_(torch::Tensor& out, const torch::Tensor& rows, const torch::Tensor& weight);

}  // namespace histoflow::torch_encoders
