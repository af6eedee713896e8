#pragma once
// Vision transformers published in HuggingFace transformers' ViTModel layout (Phikon): the timm-layout ViT of
// vit.hpp, onto which the checkpoint's names (embeddings.*, encoder.layer.N.*, layernorm.*) are mapped when
// weights are loaded, query, key and value concatenated into qkv. The pooler is ignored.
#include "histoflow/torch_encoders/vit.hpp"

namespace histoflow::torch_encoders {

std::unique_ptr<Backbone> make_hf_vit(const VitConfig& config);  // config.timm: no mask token, timm names

// Renames HuggingFace ViT tensors (any prefix, e.g. "vit.", is kept) to timm's names in place; other tensors
// are left as they are. Throws naming the file and keys when query, key and value cannot be concatenated or a
// new name is taken.
void hf_vit_keys_to_timm(std::map<std::string, torch::Tensor>& tensors, const std::string& file);

}  // namespace histoflow::torch_encoders
