#pragma once
// PyTorch files written by torch.save (the zip format of PyTorch >= 1.6), read without Python and
// without LibTorch's unpickler (which turns the OrderedDicts every state_dict is saved as into None).
// A small pickle machine understands what torch.save writes: dicts, OrderedDicts, tuples, lists, numbers,
// strings, storages (persistent ids) and _rebuild_tensor_v2 / _rebuild_parameter. It reads weights only, like
// torch.load(weights_only=True): a pickle that names any other global (os.system, a training script's class) is
// refused the moment it names it, and nothing in a checkpoint is ever called. Hostile files fail with an error:
// every offset is checked against the file, and objects, nesting and memo are bounded (input_limits.hpp).
// No LibTorch here (library histoflow_torch_files): the feature store reads and writes CLAM's .pt files with it.
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

// `bytes` is the whole file; `name` appears in every error. `allowed_globals` ("argparse.Namespace") are globals
// beyond the weights-only ones that the caller trusts a checkpoint to hold: their objects are kept as opaque data,
// never called (read_weights passes none).
Checkpoint read_torch_checkpoint(const std::string& bytes, const std::string& name,
                                 const std::vector<std::string>& allowed_globals = {});
bool looks_like_zip(const std::string& bytes);

// A file holding one tensor at the top, as torch.save(tensor) writes (CLAM's and TRIDENT's .pt feature files).
CheckpointTensor read_torch_tensor(const std::string& bytes, const std::string& name);

// The bytes torch.save would write for one contiguous float32 tensor (its row-major `values`), readable by
// torch.load; `archive` is the folder name inside the zip (torch.save uses the file's stem).
std::string write_torch_tensor(const std::vector<std::int64_t>& shape, const float* values, const std::string& archive);

}  // namespace histoflow::torch_encoders
