#pragma once
// TorchScript models: the way in for every architecture histoflow does not implement. The file carries the
// graph and the weights; the graph file declares the input size, normalisation and output width.
#include <filesystem>

#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {
std::unique_ptr<Backbone> load_torchscript(const std::filesystem::path& file);  // throws naming the file
}
