#pragma once
// PyTorch checkpoints written by torch.save (the zip format of PyTorch >= 1.6), read without Python and
// without LibTorch's unpickler (which turns the OrderedDicts every state_dict is saved as into None).
// A small pickle machine understands what torch.save writes: dicts, OrderedDicts, tuples, lists, numbers,
// strings, storages (persistent ids) and _rebuild_tensor_v2 / _rebuild_parameter; other objects (argparse
// namespaces, optimiser state) are kept opaque so they do not stop the tensors from loading.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace histoflow::torch_encoders {

struct CheckpointTensor {
  std::string dtype;                 // safetensors spelling: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides; // in elements
  std::int64_t offset = 0;           // in elements, into the storage
  std::shared_ptr<const std::string> storage;  // the storage's bytes
};

struct Checkpoint {
  std::map<std::string, CheckpointTensor> tensors;  // the first dict of tensors found (see nesting)
  std::string nesting;               // "model" when found under checkpoint["model"], "" at the top
};

// `bytes` is the whole file; `name` appears in every error.
Checkpoint read_torch_checkpoint(const std::string& bytes, const std::string& name);
bool looks_like_zip(const std::string& bytes);

}  // namespace histoflow::torch_encoders
